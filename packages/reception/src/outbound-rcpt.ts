// The RCPT rules that come from outbound routing, in one place so that the MX and submission
// answer alike: RELAY_DOMAINS (backup MX: accepted from anybody and forwarded), relaying for the
// clients allowed to (TRUSTED_NETWORKS on the MX, authenticated users on submission),
// OUTBOUND_MODE=local (nothing leaves for other domains, except TRANSPORT_MAP routes), and
// FALLBACK_RELAY (a local name nobody has here is accepted and forwarded there).
import { SmtpError } from '@facteur/smtp-error'
import { isSrsLocal, SrsError, splitAddress, type Accounts, type Srs } from '@facteur/accounts'
import { transportFor, type Config } from '@facteur/config'
import { RELAY_DENIED } from './address.js'
import { expandLocalRecipient } from './local-recipient.js'

/** RFC 3463 X.7.1: delivery not authorized; the text reveals no configuration. */
export const LOCAL_ONLY = new SmtpError(550, '7.1', 'This server does not send mail to other domains')

/**
 * A recipient outside LOCAL_DOMAINS: returns when it may be accepted, throws the refusal
 * (554 5.7.1 relay denied, 550 5.7.1 local-only) otherwise.
 */
export function checkRemoteRecipient(config: Config, domain: string, ctx: { mayRelay: boolean }): void {
  const out = config.outbound
  const d = domain.toLowerCase().replace(/\.$/, '')
  if (out.relayDomains.includes(d)) return
  if (!ctx.mayRelay) throw RELAY_DENIED
  if (out.mode === 'local' && !transportFor(out, d)) throw LOCAL_ONLY
}

/**
 * A recipient in LOCAL_DOMAINS, expanded (aliases, sub-addresses, catch-all); a name nobody has
 * here is kept as it is when FALLBACK_RELAY is set (delivery forwards it), else refused 550 5.1.1.
 * An SRS address of ours stands for the sender it was made from (a bounce of forwarded mail goes
 * back to them); one that is forged or too old is refused 550 5.1.1.
 */
export async function expandOrForward(
  address: string,
  ctx: { config: Config; accounts: Accounts; srs?: () => Promise<Srs | null> },
): Promise<string[]> {
  const { config, accounts } = ctx
  const parts = splitAddress(address)
  // Only an SRS-looking local part asks for the secrets (a stat of srs.secret): not every RCPT to SRS_DOMAIN.
  const srs = parts && parts.domain === config.srsDomain && isSrsLocal(parts.local) ? await ctx.srs?.() : null
  if (srs && parts) {
    let sender: string | null
    try {
      sender = srs.reverse(parts.local)
    } catch (err) {
      if (err instanceof SrsError) throw new SmtpError(550, '1.1', err.message)
      throw err
    }
    if (sender) {
      const domain = splitAddress(sender)?.domain
      return domain && config.localDomains.includes(domain) ? expandOrForward(sender, { config, accounts }) : [sender]
    }
  }
  try {
    return await expandLocalRecipient(address, { accounts, unknownRecipient: config.unknownRecipient })
  } catch (err) {
    if (
      config.outbound.fallbackRelay &&
      err instanceof SmtpError &&
      err.code === 550 &&
      err.enhanced === '1.1' &&
      accounts.expand(address) === null
    )
      return [address]
    throw err
  }
}
