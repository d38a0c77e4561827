// The reverse-path (MAIL FROM) a remote copy leaves with. A copy an alias forwards to another
// host leaves with an SRS address of SRS_DOMAIN (packages/accounts/src/srs.ts) when its sender is
// not ours: the next host checks SPF against our address, not the sender's domain, which did
// not authorize us (RFC 7208 §1.2.3); a bounce to that address comes back through the MX, which
// turns it into the sender again. Everything else keeps its sender: our users' mail, mail a
// trusted client relays, bounces (the null sender), a backup MX's relay, senders of
// SRS_EXCLUDE_DOMAINS.
import { normalizeAddress, openSrs, splitAddress } from '@facteur/accounts'
import type { Config } from '@facteur/config'
import type { Envelope, RecipientState } from '@facteur/spool'

/** SRS_DOMAIN is set and CONFIG_DIR/srs.secret holds no secret (yet): the copy waits. */
export const NO_SRS_SECRET = '451 4.3.5 SRS secret missing (CONFIG_DIR/srs.secret)'

/** The reverse-path for `r`'s copy; null when it must wait (NO_SRS_SECRET). */
export type ReversePath = (env: Envelope, r: RecipientState) => Promise<string | null>

export function createReversePath(config: Config): ReversePath {
  if (!config.srsDomain) return async (env) => env.sender
  const current = openSrs({ configDir: config.configDir, domain: config.srsDomain })
  return async (env, r) => {
    if (!forwarded(config, env, r)) return env.sender
    const srs = await current()
    return srs ? srs.forward(env.sender) : null
  }
}

/** A copy an alias (or the catch-all) sent to another host, of mail from a sender not ours (nor of SRS_EXCLUDE_DOMAINS). */
function forwarded(config: Config, env: Envelope, r: RecipientState): boolean {
  if (env.sender === '') return false
  const domain = splitAddress(env.sender)?.domain
  if (!domain || config.localDomains.includes(domain)) return false
  // postsrsd's SRS_EXCLUDE_DOMAINS: a domain whose SPF names us, or whose senders must keep their address.
  if (config.srsExclude.some((x) => (x.startsWith('.') ? domain.endsWith(x) : domain === x))) return false
  return Boolean(r.original) && normalizeAddress(r.original) !== normalizeAddress(r.address)
}
