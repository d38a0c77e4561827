// Who may receive through the MX: our users (after aliases, sub-addresses and the catch-all),
// and, for TRUSTED_NETWORKS clients only, anybody else (relay); outbound routing's rules
// (RELAY_DOMAINS, FALLBACK_RELAY, OUTBOUND_MODE=local) come from @facteur/reception.
import type { Accounts, Srs } from '@facteur/accounts'
import type { Config } from '@facteur/config'
import { checkRemoteRecipient, expandOrForward, parseRecipient } from '@facteur/reception'

export type AcceptedRecipient = { address: string; original: string }

export async function decideRecipient(
  raw: string,
  ctx: { config: Config; accounts: Accounts; srs?: () => Promise<Srs | null>; trusted: boolean },
): Promise<AcceptedRecipient[]> {
  const { config, accounts } = ctx
  const rcpt = parseRecipient(raw, config.mailDomain)
  if (!config.localDomains.includes(rcpt.domain)) {
    checkRemoteRecipient(config, rcpt.domain, { mayRelay: ctx.trusted })
    return [{ address: rcpt.address, original: raw }]
  }
  const targets = await expandOrForward(rcpt.address, { config, accounts, srs: ctx.srs })
  return targets.map((address) => ({ address, original: raw }))
}
