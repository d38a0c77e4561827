// The mailboxes that are over their quota, as delivery last measured them: SPOOL_DIR/full-mailboxes,
// one address a line, written by delivery (which alone reads the mailboxes), read by the
// listeners through their Accounts (openAccounts' spoolDir), which refuse mail for them at RCPT
// (552 5.2.2) instead of accepting what delivery could only defer and, in the end, bounce.

export const FULL_MAILBOXES_FILE = 'full-mailboxes'

export function parseFullMailboxes(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim().toLowerCase())
    .filter((l) => l.includes('@'))
}
