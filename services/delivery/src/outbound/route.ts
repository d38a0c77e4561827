// Which way each recipient goes. The first rule that applies wins:
//   1. a domain in LOCAL_DOMAINS: the local mailbox; but a name nobody has here goes to
//      FALLBACK_RELAY when it is set (the seed's "where mail that did not arrive locally goes");
//   2. a TRANSPORT_MAP entry for the domain (exact, then the longest `.parent`): that host,
//      whatever OUTBOUND_MODE says;
//   3. a domain in RELAY_DOMAINS (backup MX): the domain's MX hosts better than this one;
//   4. OUTBOUND_MODE=local: refused (the MX and submission already refuse such a RCPT);
//   5. OUTBOUND_MODE=relay: RELAY_HOST, with RELAY_USER's credentials;
//   6. OUTBOUND_MODE=direct: the domain's MX hosts (RFC 5321 §5.1).
import type { Accounts } from '@facteur/accounts'
import { transportFor, type Config, type Destination } from '@facteur/config'
import type { Hop, HopFinder } from './mx.js'
import type { Session } from './pool.js'
import type { MtaSts } from './mta-sts.js'

export type Route =
  | { kind: 'local' }
  | { kind: 'refused'; reply: string }
  | {
      kind: 'remote'
      /** Recipients with the same key go in one transaction. */
      key: string
      session: Session
      hops(): Promise<Hop[]>
    }

export type Router = { route(address: string): Promise<Route> }

export function createRouter(config: Config, accounts: Accounts, finder: HopFinder, mtaSts: MtaSts): Router {
  const out = config.outbound
  const hostSession = (dest: Destination): Session => ({ tls: dest.port === 465 ? 'implicit' : out.tls, verify: false })
  const toDestination = (key: string, dest: Destination): Route => ({
    kind: 'remote',
    key,
    session: hostSession(dest),
    hops: () => finder.hops(dest),
  })
  const relaySession: Session | undefined = out.relay && {
    tls: out.relay.tls === 'tls' ? 'implicit' : out.relay.tls === 'starttls' ? 'require' : 'none',
    verify: out.relay.verify,
    auth: out.relay.user && out.relay.password ? { user: out.relay.user, pass: out.relay.password } : undefined,
  }

  return {
    async route(address) {
      const domain = address.slice(address.lastIndexOf('@') + 1).toLowerCase()
      if (config.localDomains.includes(domain)) {
        if (out.fallbackRelay) {
          await accounts.refresh()
          if (!accounts.expand(address)) return toDestination(`fallback:${out.fallbackRelay.text}`, out.fallbackRelay)
        }
        return { kind: 'local' }
      }
      const mapped = transportFor(out, domain)
      if (mapped) return toDestination(`transport:${mapped.text}`, mapped)
      const direct: Route = {
        kind: 'remote',
        key: `mx:${domain}`,
        session: { tls: out.tls, verify: false },
        // RFC 8461: the MX hosts the domain's MTA-STS policy allows, with the TLS it asks.
        hops: async () => mtaSts.apply(domain, await finder.mxHops(domain)),
      }
      if (out.relayDomains.includes(domain)) return direct
      if (out.mode === 'local') return { kind: 'refused', reply: '550 5.7.1 This server does not send mail to other domains' }
      if (out.mode === 'relay' && out.relay && relaySession) {
        const relay = out.relay
        return {
          kind: 'remote',
          key: 'relay',
          session: relaySession,
          hops: () => finder.hops({ host: relay.host, port: relay.port, mx: false, text: relay.host }),
        }
      }
      return direct
    },
  }
}
