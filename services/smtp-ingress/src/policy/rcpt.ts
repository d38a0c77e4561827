// Who may receive through the MX: our users (after aliases, sub-addresses and the catch-all),
// and, for TRUSTED_NETWORKS clients only, anybody else (relay).
import { SmtpError } from '@facteur/smtp-error'
import type { Accounts } from '@facteur/accounts'
import type { Config } from '@facteur/config'
import { parseRecipient, RELAY_DENIED } from './address.js'

export type AcceptedRecipient = { address: string; original: string }

export async function decideRecipient(
  raw: string,
  ctx: { config: Config; accounts: Accounts; trusted: boolean },
): Promise<AcceptedRecipient[]> {
  const { config, accounts } = ctx
  const rcpt = parseRecipient(raw, config.mailDomain)
  if (!config.localDomains.includes(rcpt.domain)) {
    if (ctx.trusted) return [{ address: rcpt.address, original: raw }]
    throw RELAY_DENIED
  }
  await accounts.refresh()
  let expansion = accounts.expand(rcpt.address)
  if (!expansion && config.unknownRecipient.kind === 'catchall') expansion = accounts.expand(config.unknownRecipient.address)
  if (!expansion) throw new SmtpError(550, '1.1', 'No such user here')
  const targets = [...expansion.mailboxes, ...expansion.external]
  if (targets.length === 0) {
    // RFC 5321 §6.3: a loop is refused rather than delivered nowhere.
    if (expansion.loop) throw new SmtpError(550, '4.6', 'Alias loop detected')
    throw new SmtpError(550, '1.1', 'No such user here')
  }
  return targets.map((address) => ({ address, original: raw }))
}
