// Which way each recipient goes. The first rule that applies wins:
//   1. a domain in LOCAL_DOMAINS: the local mailbox; but a name nobody has here goes to
//      FALLBACK_RELAY when it is set (the seed's "where mail that did not arrive locally goes");
//   2. a TRANSPORT_MAP entry for the domain (exact, then the longest `.parent`): that host,
//      whatever OUTBOUND_MODE says;
//   3. a domain in RELAY_DOMAINS (backup MX): the domain's MX hosts better than this one;
//   4. OUTBOUND_MODE=local: refused (the MX and submission already refuse such a RCPT);
//   5. a SENDER_RELAY_MAP entry for the sender (its address, its domain, a `.parent`): that relay,
//      with the credentials relay_passwords holds for it (Postfix's sender_dependent_relayhost_maps);
//   6. OUTBOUND_MODE=relay: RELAY_HOST, with RELAY_USER's credentials;
//   7. OUTBOUND_MODE=direct: the domain's MX hosts (RFC 5321 §5.1).
// The TLS of rules 2, 3 and 7 (and of 5 without credentials) is OUTBOUND_TLS, or the domain's
// MTA-STS policy for its MX hosts, unless OUTBOUND_TLS_POLICY names the domain: its level then
// decides (Postfix's smtp_tls_policy_maps, which an administrator sets for a partner that must get
// mail over TLS).
import type { Accounts } from '@facteur/accounts'
import { senderRelayFor, tlsPolicyFor, transportFor, type Config, type Destination, type TlsLevel } from '@facteur/config'
import type { Hop, HopFinder } from './mx.js'
import type { Session } from './pool.js'
import type { MtaSts } from './mta-sts.js'
import type { RelayPasswords } from './relay-passwords.js'

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

/** `sender`: the envelope's (SENDER_RELAY_MAP); '' for the null sender or when it does not matter. */
export type Router = { route(address: string, sender?: string): Promise<Route> }

/** The session an OUTBOUND_TLS_POLICY level asks for (`verify`: a certificate valid for the host's name). */
function policySession(level: TlsLevel, domain: string): Session {
  const requiredBy = `OUTBOUND_TLS_POLICY (${domain}:${level})`
  if (level === 'none') return { tls: 'none', verify: false }
  if (level === 'may') return { tls: 'opportunistic', verify: false }
  return { tls: 'require', verify: level === 'verify', requiredBy }
}

export function createRouter(config: Config, accounts: Accounts, finder: HopFinder, mtaSts: MtaSts, passwords: RelayPasswords): Router {
  const out = config.outbound
  const hostSession = (dest: Destination, level: TlsLevel | undefined, domain: string): Session =>
    dest.port === 465
      ? { tls: 'implicit', verify: level === 'verify' }
      : level
        ? policySession(level, domain)
        : { tls: out.tls, verify: false }
  const toDestination = (key: string, dest: Destination, domain = ''): Route => {
    const level = domain ? tlsPolicyFor(out, domain) : undefined
    return {
      kind: 'remote',
      key: level ? `${key}|tls:${level}` : key,
      session: hostSession(dest, level, domain),
      hops: () => finder.hops(dest),
    }
  }
  const relaySession: Session | undefined = out.relay && {
    tls: out.relay.tls === 'tls' ? 'implicit' : out.relay.tls === 'starttls' ? 'require' : 'none',
    verify: out.relay.verify,
    auth: out.relay.user && out.relay.password ? { user: out.relay.user, pass: out.relay.password } : undefined,
  }

  return {
    async route(address, sender = '') {
      const domain = address.slice(address.lastIndexOf('@') + 1).toLowerCase()
      if (config.localDomains.includes(domain)) {
        if (out.fallbackRelay) {
          await accounts.refresh()
          if (!accounts.expand(address)) return toDestination(`fallback:${out.fallbackRelay.text}`, out.fallbackRelay)
        }
        return { kind: 'local' }
      }
      const mapped = transportFor(out, domain)
      if (mapped) return toDestination(`transport:${mapped.text}`, mapped, domain)
      const level = tlsPolicyFor(out, domain)
      const direct: Route = {
        kind: 'remote',
        key: `mx:${domain}`,
        session: level ? policySession(level, domain) : { tls: out.tls, verify: false },
        // RFC 8461: the MX hosts the domain's MTA-STS policy allows, with the TLS it asks; a
        // domain OUTBOUND_TLS_POLICY names gets its level instead.
        hops: async () => (level ? finder.mxHops(domain) : mtaSts.apply(domain, await finder.mxHops(domain))),
      }
      if (out.relayDomains.includes(domain)) return direct
      if (out.mode === 'local') return { kind: 'refused', reply: '550 5.7.1 This server does not send mail to other domains' }
      const senderRelay = sender ? senderRelayFor(out, sender) : undefined
      if (senderRelay) {
        const auth = await passwords.lookup(sender, senderRelay.text)
        // Credentials travel inside TLS only: STARTTLS is required when there are some.
        const session: Session =
          senderRelay.port === 465
            ? { tls: 'implicit', verify: out.relayVerify, auth }
            : auth
              ? { tls: 'require', verify: out.relayVerify, auth, requiredBy: `relay_passwords (${senderRelay.text})` }
              : { tls: out.tls, verify: false }
        return {
          kind: 'remote',
          key: `sender-relay:${senderRelay.text}|${auth?.user ?? ''}`,
          session,
          hops: () => finder.hops(senderRelay),
        }
      }
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
