// Which hosts to try for a domain, in order: RFC 5321 §5.1 (MX records by preference, equal
// preferences shuffled; no MX records: the domain's own A/AAAA, the "implicit MX"), RFC 7505
// (a null MX: the domain takes no mail), and §5.1's loop rule (an MX that is this host: drop it
// and every less preferred one; nothing left is a loop, 5.4.6). Asks DNS_SERVERS only.
import type { Resolver } from 'node:dns/promises'
import { isIP } from 'node:net'
import os from 'node:os'
import type { Config } from '@facteur/config'
import type { Destination } from '@facteur/config'
import type { Session } from './pool.js'

/**
 * One address to connect to, and the name it was found under (EHLO peer, TLS SNI, logs); with
 * the session a policy asks of this host (MTA-STS), instead of its route's.
 */
export type Hop = { name: string; address: string; port: number; session?: Session }

/** A lookup that ends the attempt for every recipient of the domain: permanent or temporary. */
export class RouteError extends Error {
  override name = 'RouteError'
  constructor(
    readonly reply: string,
    readonly permanent: boolean,
  ) {
    super(reply)
  }
}

/** RFC 5321 §5.1 asks for "a reasonable number" of addresses; Postfix tries 5. */
const MAX_HOPS = 5

export type HopFinder = {
  /** The ordered hops of a destination (a host, or the MX hosts of a name). */
  hops(dest: Destination): Promise<Hop[]>
  /** The ordered hops of a recipient domain (direct mode). */
  mxHops(domain: string): Promise<Hop[]>
}

export function createHopFinder(config: Config, resolver: Resolver): HopFinder {
  const out = config.outbound
  // Our own addresses only mean "this host" when the remote port is the one our MX listens on.
  const self = new Set<string>(out.port === config.smtp.port ? ownAddresses(config) : [])
  const isSelfName = (name: string): boolean => name.toLowerCase().replace(/\.$/, '') === config.hostname

  const code = (err: unknown): string => String((err as NodeJS.ErrnoException)?.code ?? '')
  const missing = (err: unknown): boolean => ['ENOTFOUND', 'ENODATA', 'NOTFOUND', 'NODATA'].includes(code(err))

  /** A and AAAA of a name, in OUTBOUND_IP_PREFERENCE order; [] when the name has none. */
  async function addresses(name: string): Promise<string[]> {
    if (isIP(name)) return [name]
    const ask = async (family: 4 | 6): Promise<string[]> => {
      try {
        return family === 4 ? await resolver.resolve4(name) : await resolver.resolve6(name)
      } catch (err) {
        if (missing(err)) return []
        throw new RouteError(`451 4.4.3 Cannot resolve ${name}: ${code(err) || (err as Error).message}`, false)
      }
    }
    const bound = out.bindAddress ? isIP(out.bindAddress) : 0
    const [v4, v6] = await Promise.all([bound === 6 ? [] : ask(4), bound === 4 ? [] : ask(6)])
    return out.ipPreference === 'ipv6' ? [...v6, ...v4] : [...v4, ...v6]
  }

  const toHops = async (hosts: { name: string }[], port: number): Promise<Hop[]> => {
    const found = await Promise.all(hosts.map(async (h) => (await addresses(h.name)).map((address) => ({ name: h.name, address, port }))))
    return found.flat().slice(0, MAX_HOPS)
  }

  async function mxHops(domain: string, port = out.port): Promise<Hop[]> {
    let records: { exchange: string; priority: number }[]
    try {
      records = await resolver.resolveMx(domain)
    } catch (err) {
      if (code(err) === 'ENOTFOUND') throw new RouteError(`550 5.1.2 Domain ${domain} does not exist`, true)
      if (code(err) === 'ENODATA') records = []
      else throw new RouteError(`451 4.4.3 Cannot look up the MX of ${domain}: ${code(err) || (err as Error).message}`, false)
    }
    // RFC 7505 §3: a single MX of preference 0 naming the root is a null MX.
    if (records.some((r) => r.exchange === '' || r.exchange === '.'))
      throw new RouteError(`550 5.1.10 Domain ${domain} accepts no mail (null MX, RFC 7505)`, true)
    // RFC 5321 §5.1: no MX records: the domain itself, as if it had an MX of preference 0.
    const implicit = records.length === 0
    const hosts = implicit
      ? [{ name: domain, pref: 0 }]
      : shuffleEqual(records.map((r) => ({ name: r.exchange.toLowerCase(), pref: r.priority })))

    // Resolve every host: a host is this one by its name or by one of its addresses.
    const resolved = await Promise.all(hosts.map(async (h) => ({ ...h, addrs: await addresses(h.name) })))
    const mine = resolved.filter((h) => isSelfName(h.name) || h.addrs.some((a) => self.has(normalize(a))))
    const ourPref = mine.length ? Math.min(...mine.map((h) => h.pref)) : Infinity
    const usable = resolved.filter((h) => h.pref < ourPref)
    if (mine.length && usable.length === 0)
      throw new RouteError(`554 5.4.6 Mail for ${domain} loops back to myself (its best MX is this host)`, true)
    const hops = usable.flatMap((h) => h.addrs.map((address) => ({ name: h.name, address, port }))).slice(0, MAX_HOPS)
    if (hops.length === 0) {
      if (implicit) throw new RouteError(`550 5.1.2 Domain ${domain} has no MX and no address`, true)
      throw new RouteError(`451 4.4.3 No address for the MX hosts of ${domain}`, false)
    }
    return hops
  }

  return {
    mxHops: (domain) => mxHops(domain),
    async hops(dest) {
      if (dest.mx) return mxHops(dest.host, dest.port)
      const hops = await toHops([{ name: dest.host }], dest.port)
      if (hops.length === 0) throw new RouteError(`451 4.4.3 No address for ${dest.host}`, false)
      return hops
    },
  }
}

/** RFC 5321 §5.1: hosts of equal preference are tried in random order, spreading the load. */
function shuffleEqual<T extends { pref: number }>(hosts: T[]): T[] {
  const shuffled = hosts.map((h) => ({ h, r: Math.random() }))
  shuffled.sort((a, b) => a.h.pref - b.h.pref || a.r - b.r)
  return shuffled.map((x) => x.h)
}

function normalize(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  return (m ? m[1] : ip).toLowerCase()
}

/** This host's addresses: its interfaces', OUTBOUND_SELF_ADDRESSES, and SMTP_LISTEN's. */
function ownAddresses(config: Config): string[] {
  const list = Object.values(os.networkInterfaces())
    .flat()
    .map((i) => i?.address)
    .filter((a): a is string => Boolean(a))
  list.push(...config.outbound.selfAddresses)
  if (isIP(config.smtp.listen) && !['0.0.0.0', '::'].includes(config.smtp.listen)) list.push(config.smtp.listen)
  return list.map(normalize)
}
