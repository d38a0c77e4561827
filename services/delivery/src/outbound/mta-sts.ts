// MTA-STS (RFC 8461): a domain that publishes a policy in `enforce` mode gets its mail only from
// the MX hosts the policy names, over TLS with a certificate valid for that host's name; never in
// clear, never to another host, whatever DNS says (the downgrade and MX-spoofing attacks that
// opportunistic TLS cannot see). The policy is found by the TXT record `_mta-sts.DOMAIN`
// (`v=STSv1; id=...`) and fetched from https://mta-sts.DOMAIN/.well-known/mta-sts.txt, its
// certificate checked; it is kept for its max_age, in memory and in SPOOL_DIR/mta-sts/, so an
// attacker who later blocks the TXT record or the HTTPS server cannot switch it off (§5.1).
// `testing` only logs what enforce would refuse; `none`, no record or no policy: as before.
import fs from 'node:fs/promises'
import https from 'node:https'
import path from 'node:path'
import { isIP, type LookupFunction } from 'node:net'
import type { Resolver } from 'node:dns/promises'
import type { Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import { RouteError, type Hop } from './mx.js'

export type Policy = { mode: 'enforce' | 'testing' | 'none'; mx: string[]; maxAge: number }
type Cached = { id: string; policy: Policy; expiresAt: number }

/** RFC 8461 §3.2: max_age up to 31557600 s; §3.3: a policy body over 64 KiB need not be read. */
const MAX_AGE_LIMIT = 31_557_600
const MAX_BODY = 64 * 1024
const FETCH_TIMEOUT_MS = 30_000
/** How long a TXT answer (or its absence) is taken as current before it is asked again. */
const TXT_RECHECK_MS = 5 * 60_000

export type MtaSts = {
  /** The hops MX delivery to `domain` may use, each with the session its policy asks for. */
  apply(domain: string, hops: Hop[]): Promise<Hop[]>
}

export function createMtaSts(config: Config, resolver: Resolver, logger: Logger): MtaSts {
  const dir = path.join(config.spoolDir, 'mta-sts')
  const cache = new Map<string, Cached | null>()
  const checked = new Map<string, number>()
  const pending = new Map<string, Promise<Cached | null>>()
  const lookup = resolverLookup(resolver)

  async function cached(domain: string): Promise<Cached | null> {
    if (!cache.has(domain)) {
      const text = await fs.readFile(path.join(dir, `${domain}.json`), 'utf8').catch(() => null)
      cache.set(domain, text ? readCached(text) : null)
    }
    const c = cache.get(domain) ?? null
    return c && c.expiresAt > Date.now() ? c : null
  }

  async function store(domain: string, c: Cached): Promise<void> {
    cache.set(domain, c)
    // A cache (a lost write costs one fetch): written whole by a rename, not fsync'd.
    await fs.mkdir(dir, { recursive: true })
    const temp = path.join(dir, `.${domain}.${process.pid}`)
    await fs.writeFile(temp, JSON.stringify(c))
    await fs.rename(temp, path.join(dir, `${domain}.json`))
  }

  async function refresh(domain: string): Promise<Cached | null> {
    const held = await cached(domain)
    // Asked again in TXT_RECHECK_MS whatever the answer: a resolver that times out on TXT queries
    // would otherwise hold every message to the domain for its timeout.
    checked.set(domain, Date.now())
    let id: string | null
    try {
      id = policyId(await resolver.resolveTxt(`_mta-sts.${domain}`))
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOTFOUND' && code !== 'ENODATA') return held // DNS failing: what we hold
      id = null
    }
    // §5.1: no (valid) record keeps a policy held until it expires; the same id needs no fetch.
    if (id === null || (held && held.id === id)) return held
    try {
      const policy = parsePolicy(await fetchPolicy(domain, config.outbound.mtaStsPort, lookup))
      const c = { id, policy, expiresAt: Date.now() + policy.maxAge * 1000 }
      await store(domain, c)
      logger.info('MTA-STS policy', { domain, id, mode: policy.mode, mx: policy.mx.join(' '), maxAge: policy.maxAge })
      return c
    } catch (err) {
      logger.warn('MTA-STS policy not fetched', { domain, id, error: (err as Error).message })
      return held
    }
  }

  async function policyFor(domain: string): Promise<Policy | null> {
    if (Date.now() - (checked.get(domain) ?? 0) < TXT_RECHECK_MS) return (await cached(domain))?.policy ?? null
    let p = pending.get(domain)
    if (!p) {
      p = refresh(domain).finally(() => pending.delete(domain))
      pending.set(domain, p)
    }
    return (await p)?.policy ?? null
  }

  return {
    async apply(domain, hops) {
      if (!config.outbound.mtaSts) return hops
      const policy = await policyFor(domain.toLowerCase())
      if (!policy || policy.mode === 'none') return hops
      const named = hops.filter((h) => policy.mx.some((pattern) => mxMatches(pattern, h.name)))
      if (policy.mode === 'testing') {
        if (named.length < hops.length)
          logger.warn('MTA-STS (testing): MX hosts outside the policy', {
            domain,
            hosts: [...new Set(hops.filter((h) => !named.includes(h)).map((h) => h.name))].join(' '),
          })
        return hops
      }
      if (named.length === 0)
        throw new RouteError(
          `451 4.7.5 No MX host of ${domain} is one its MTA-STS policy names (${policy.mx.join(', ')}), RFC 8461 §4.1`,
          false,
        )
      return named.map((h) => ({ ...h, session: { tls: 'require', verify: true, requiredBy: `the MTA-STS policy of ${domain}` } }))
    },
  }
}

/** A policy file as store() wrote it; null for one that is damaged (it is fetched again). */
function readCached(text: string): Cached | null {
  try {
    const c = JSON.parse(text) as Cached
    return typeof c.id === 'string' && typeof c.expiresAt === 'number' && Array.isArray(c.policy?.mx) ? c : null
  } catch {
    return null
  }
}

/** The id of the one `v=STSv1` TXT record (RFC 8461 §3.1); null when there is none, or several. */
export function policyId(records: string[][]): string | null {
  const sts = records.map((r) => r.join('')).filter((t) => /^v=STSv1;/.test(t))
  if (sts.length !== 1) return null
  const id = /(?:^|;)\s*id=([A-Za-z0-9]{1,32})\s*(?:;|$)/.exec(sts[0])
  return id ? id[1] : null
}

/** RFC 8461 §3.2's key: value lines; throws on a policy that is not valid. */
export function parsePolicy(text: string): Policy {
  const fields = new Map<string, string[]>()
  for (const line of text.split(/\r?\n/)) {
    const m = /^([A-Za-z0-9_]+):[ \t]*(.*?)[ \t]*$/.exec(line)
    if (m) fields.set(m[1], [...(fields.get(m[1]) ?? []), m[2]])
  }
  const one = (key: string): string | undefined => fields.get(key)?.[0]
  if (one('version') !== 'STSv1') throw new Error('policy without version: STSv1')
  const mode = one('mode')
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none')
    throw new Error(`policy mode ${mode ?? '(none)'} is not enforce, testing or none`)
  const age = one('max_age') ?? ''
  if (!/^\d{1,10}$/.test(age) || Number(age) > MAX_AGE_LIMIT)
    throw new Error(`policy max_age ${age || '(none)'} is not 0 to ${MAX_AGE_LIMIT}`)
  const mx = (fields.get('mx') ?? []).map((p) => p.toLowerCase().replace(/\.$/, ''))
  if (mode !== 'none' && mx.length === 0) throw new Error('policy names no mx')
  return { mode, mx, maxAge: Number(age) }
}

/** RFC 8461 §4.1: a name, or `*.` standing for exactly one leftmost label. */
export function mxMatches(pattern: string, host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '')
  if (!pattern.startsWith('*.')) return h === pattern
  const dot = h.indexOf('.')
  return dot > 0 && h.slice(dot + 1) === pattern.slice(2)
}

/** GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt: no redirect, 200 and text/plain only (§3.3). */
function fetchPolicy(domain: string, port: number, lookup: LookupFunction): Promise<string> {
  const host = `mta-sts.${domain}`
  return new Promise((resolve, reject) => {
    const req = https.get(
      {
        host,
        port,
        path: '/.well-known/mta-sts.txt',
        servername: host,
        lookup,
        agent: false,
        minVersion: 'TLSv1.2',
        timeout: FETCH_TIMEOUT_MS,
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume()
          return reject(new Error(`${host} answered HTTP ${res.statusCode}`))
        }
        if (!/^text\/plain\b/i.test(res.headers['content-type'] ?? '')) {
          res.resume()
          return reject(new Error(`${host} sent ${res.headers['content-type'] ?? 'no content type'}, not text/plain`))
        }
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.length
          if (size > MAX_BODY) req.destroy(new Error(`${host}: policy over ${MAX_BODY} bytes`))
          else chunks.push(c)
        })
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`${host}: no answer in ${FETCH_TIMEOUT_MS / 1000}s`)))
    req.on('error', reject)
  })
}

/** net's lookup, answered by DNS_SERVERS as every other name delivery resolves. */
function resolverLookup(resolver: Resolver): LookupFunction {
  return (hostname, options, callback) => {
    const found = async (): Promise<{ address: string; family: number }[]> => {
      if (isIP(hostname)) return [{ address: hostname, family: isIP(hostname) }]
      const v4 = await resolver.resolve4(hostname).catch(() => [] as string[])
      const v6 = v4.length ? [] : await resolver.resolve6(hostname).catch(() => [] as string[])
      return [...v4.map((address) => ({ address, family: 4 })), ...v6.map((address) => ({ address, family: 6 }))]
    }
    found().then(
      (list) => {
        if (list.length === 0) {
          const err = Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' })
          return callback(err, '', 0)
        }
        if (options.all) (callback as unknown as (e: null, l: typeof list) => void)(null, list)
        else callback(null, list[0].address, list[0].family)
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    )
  }
}
