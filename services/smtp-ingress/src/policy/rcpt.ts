// Who may receive through the MX: our users (after aliases, sub-addresses and the catch-all),
// and, for TRUSTED_NETWORKS clients only, anybody else (relay).
import type { Accounts } from '@facteur/accounts'
import type { Config } from '@facteur/config'
import { expandLocalRecipient, parseRecipient, RELAY_DENIED } from '@facteur/reception'

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
  const targets = await expandLocalRecipient(rcpt.address, { accounts, unknownRecipient: config.unknownRecipient })
  return targets.map((address) => ({ address, original: raw }))
}
