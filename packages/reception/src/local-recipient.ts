// Where a recipient in one of our domains goes: aliases and sub-addresses resolved, the catch-all
// (UNKNOWN_RECIPIENT) for nobody by that name. The MX and submission accept a local RCPT alike.
import { SmtpError } from '@facteur/smtp-error'
import type { Accounts } from '@facteur/accounts'
import type { UnknownRecipient } from '@facteur/config'

/** The final addresses (local mailboxes and external targets); throws 550 for nobody. */
export async function expandLocalRecipient(
  address: string,
  ctx: { accounts: Accounts; unknownRecipient: UnknownRecipient },
): Promise<string[]> {
  const { accounts, unknownRecipient } = ctx
  await accounts.refresh()
  let expansion = accounts.expand(address)
  // Nobody by that name, here or where a domain alias (`@d: @ours`) sent it: the catch-all.
  const nobody = !expansion || (!expansion.loop && expansion.mailboxes.length + expansion.external.length === 0)
  if (nobody && unknownRecipient.kind === 'catchall') expansion = accounts.expand(unknownRecipient.address)
  if (!expansion) throw new SmtpError(550, '1.1', 'No such user here')
  const targets = [...expansion.mailboxes, ...expansion.external]
  if (targets.length === 0) {
    // RFC 5321 §6.3: a loop is refused rather than delivered nowhere.
    if (expansion.loop) throw new SmtpError(550, '4.6', 'Alias loop detected')
    throw new SmtpError(550, '1.1', 'No such user here')
  }
  // Every mailbox it reaches over its quota (delivery's list): refused now, as Dovecot's
  // quota-status service answers Postfix, rather than taken, deferred and bounced.
  if (expansion.external.length === 0 && expansion.mailboxes.every((m) => accounts.full(m))) throw new SmtpError(552, '2.2', 'Mailbox full')
  return targets
}
