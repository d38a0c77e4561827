// ALWAYS_BCC, Postfix's always_bcc: every message the MX or submission accepts also goes to one
// address (an archive), seen by nobody else: it is in the envelope only, never in a header, and
// not in the Received: field's "for". Its copy asks for no notice (RFC 3461 §4.1 NOTIFY=NEVER, as
// Postfix adds it): a failed copy is the log's business, never the sender's. An address of ours
// is expanded as at RCPT (an alias to a mailbox, not the catch-all); one nobody has here is logged
// and the message goes on without its copy: an archive's typo never refuses mail.
import { splitAddress, type Accounts } from '@facteur/accounts'
import type { Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import type { RecipientState } from '@facteur/spool'
import { expandLocalRecipient } from './local-recipient.js'

/** The recipients ALWAYS_BCC adds to each message; undefined when it is not set. */
export type AlwaysBcc = () => Promise<RecipientState[]>

export function alwaysBcc(config: Config, accounts: Accounts, logger: Logger): AlwaysBcc | undefined {
  const bcc = config.alwaysBcc
  if (!bcc) return undefined
  const local = config.localDomains.includes(splitAddress(bcc)?.domain ?? '')
  return async () => {
    let targets: string[]
    try {
      targets = local ? await expandLocalRecipient(bcc, { accounts, unknownRecipient: { kind: 'reject' } }) : [bcc]
    } catch (err) {
      logger.warn('ALWAYS_BCC names nobody here: the message is not copied', { address: bcc, err: (err as Error).message })
      return []
    }
    return targets.map((address) => ({ address, original: bcc, status: 'pending' as const, attempts: 0, notify: ['NEVER'] }))
  }
}
