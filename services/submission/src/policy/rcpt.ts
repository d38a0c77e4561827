// Where an authenticated user's recipients go: anywhere outbound routing allows (authenticated
// users may relay; OUTBOUND_MODE=local keeps mail in), local ones checked and expanded as the MX
// does (aliases, sub-addresses, catch-all, FALLBACK_RELAY; unknown users refused at once).
import type { Accounts, Srs } from '@facteur/accounts'
import type { Config } from '@facteur/config'
import { checkRemoteRecipient, expandOrForward, parseRecipient } from '@facteur/reception'

/** The final addresses one RCPT TO reaches; throws an SmtpError to refuse it. */
export async function decideRecipient(
  raw: string,
  ctx: { config: Config; accounts: Accounts; srs?: () => Promise<Srs | null> },
): Promise<string[]> {
  const { config, accounts } = ctx
  const rcpt = parseRecipient(raw, config.mailDomain)
  if (!config.localDomains.includes(rcpt.domain)) {
    checkRemoteRecipient(config, rcpt.domain, { mayRelay: true })
    return [rcpt.address]
  }
  return expandOrForward(rcpt.address, { config, accounts, srs: ctx.srs })
}
