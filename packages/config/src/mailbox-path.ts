// MAILBOX_PATH templates: %u local part (lower-cased), %d domain, %e whole address.
import path from 'node:path'

/** The fixed directory in front of the first placeholder: expansions must stay below it. */
export function mailboxBase(template: string): string {
  const i = template.indexOf('%')
  const head = i < 0 ? template : template.slice(0, i)
  return head.endsWith('/') ? path.resolve(head) : path.dirname(path.resolve(head + 'x'))
}

/**
 * Expands the template for one mailbox, or returns `null` when the result would leave the
 * template's base directory (a local part like `..` or one holding a `/`).
 */
export function expandMailboxPath(template: string, local: string, domain: string): string | null {
  const u = local.toLowerCase()
  const d = domain.toLowerCase()
  for (const part of [u, d]) {
    // RFC 5321 §4.1.2: a Dot-string never starts with a dot; a leading dot would also reach hidden
    // names (`.lock` files, Maildir++ `.Folder`s, `.` and `..`).
    if (part === '' || part.startsWith('.') || /[/\\\x00-\x1f\x7f]/.test(part)) return null
  }
  const expanded = template.replace(/%([ude%])/g, (_, c: string) => (c === 'u' ? u : c === 'd' ? d : c === 'e' ? `${u}@${d}` : '%'))
  const resolved = path.resolve(expanded)
  const base = mailboxBase(template)
  if (resolved !== base && !resolved.startsWith(base + path.sep)) return null
  if (resolved === base) return null
  return resolved
}
