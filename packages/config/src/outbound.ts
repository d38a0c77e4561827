// Outbound settings: how mail for other hosts leaves (direct to the MX, through a relay, or not
// at all), per-domain routes, the backup-MX and fallback-relay roles, identity, TLS, timeouts,
// delay warnings and DKIM. Read once at start; TRANSPORT_MAP and friends are parsed here so a
// typo stops the service with one line.
import { promises as dns } from 'node:dns'
import fs from 'node:fs/promises'
import path from 'node:path'
import { isIP } from 'node:net'
import { ConfigError, type EnvReader } from './env.js'

export type OutboundMode = 'direct' | 'relay' | 'local'

/**
 * Where a route sends mail: one host (by name or address; its A/AAAA records, no MX lookup), or
 * the MX hosts of a name (`mx:NAME`). Port 465 means implicit TLS, any other port STARTTLS.
 */
export type Destination = Readonly<{ host: string; port: number; mx: boolean; text: string }>

/** One TRANSPORT_MAP entry: `example.org` matches that domain, `.example.org` its subdomains. */
export type TransportRoute = Readonly<{ pattern: string; destination: Destination }>

export type RelayTls = 'starttls' | 'tls' | 'none'

/** Postfix's smtp_tls_policy_maps levels: no TLS, STARTTLS when offered, TLS required, TLS with a certificate valid for the host. */
export type TlsLevel = 'none' | 'may' | 'encrypt' | 'verify'
export type TlsPolicyEntry = Readonly<{ pattern: string; level: TlsLevel }>

export type OutboundConfig = Readonly<{
  mode: OutboundMode
  relay?: Readonly<{ host: string; port: number; user?: string; password?: string; tls: RelayTls; verify: boolean }>
  transportMap: readonly TransportRoute[]
  /**
   * SENDER_RELAY_MAP: the relay host for mail from a sender (`user@domain`), a domain or `.domain`
   * (Postfix's sender_dependent_relayhost_maps); credentials in CONFIG_DIR/relay_passwords.
   */
  senderRelayMap: readonly TransportRoute[]
  /** RELAY_TLS_VERIFY: a relay's certificate must be valid for its name (RELAY_HOST, SENDER_RELAY_MAP's hosts). */
  relayVerify: boolean
  fallbackRelay?: Destination
  relayDomains: readonly string[]
  /** The port of remote MX hosts: 25, or a test sink's port. */
  port: number
  tls: 'opportunistic' | 'require'
  /** OUTBOUND_TLS_POLICY: the TLS some domains' hosts must offer, whatever OUTBOUND_TLS and MTA-STS say. */
  tlsPolicy: readonly TlsPolicyEntry[]
  /** OUTBOUND_MTA_STS: MX delivery follows the receiving domain's MTA-STS policy (RFC 8461). */
  mtaSts: boolean
  /** Where mta-sts.DOMAIN serves its policy: 443, or a test server's port. */
  mtaStsPort: number
  bindAddress?: string
  ipPreference: 'ipv4' | 'ipv6' | 'any'
  /** Connections open at once to one destination host. */
  concurrencyPerDomain: number
  connectTimeoutMs: number
  greetingTimeoutMs: number
  commandTimeoutMs: number
  /** DNS servers (`IP` or `IP:PORT`); empty: the system's resolvers. */
  dnsServers: readonly string[]
  /** Addresses that are this host although no interface has them (a public address behind NAT). */
  selfAddresses: readonly string[]
  /** Send one RFC 3464 `delayed` notice once a message has waited this long; null: never. */
  delayWarningMs: number | null
  dkimSelector: string
  /** ARC_SEAL: a copy an alias forwards to another host carries an ARC set (RFC 8617). */
  arcSeal: boolean
}>

const DESTINATION_HELP = 'HOST, HOST:PORT, [ADDRESS]:PORT or mx:DOMAIN (e.g. [10.0.0.5]:25 or relay.example.net:587)'

/** Parses one destination (TRANSPORT_MAP value, FALLBACK_RELAY). */
export function parseDestination(r: EnvReader, variable: string, text: string, defaultPort = 25): Destination {
  const t = text.trim()
  if (t.toLowerCase().startsWith('mx:'))
    return Object.freeze({ host: r.domain(variable, t.slice(3)), port: defaultPort, mx: true, text: t })
  let host: string
  let port = defaultPort
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(t)
  const plain = /^([^:[\]]+)(?::(\d+))?$/.exec(t)
  const m = bracket ?? plain
  if (!m) throw new ConfigError(variable, text, DESTINATION_HELP)
  host = m[1].replace(/^ipv6:/i, '')
  if (m[2] !== undefined) {
    port = Number(m[2])
    if (port < 1 || port > 65535) throw new ConfigError(variable, text, `${DESTINATION_HELP}, with a port from 1 to 65535`)
  }
  if (!isIP(host)) {
    if (!bracket && host.includes(':')) throw new ConfigError(variable, text, DESTINATION_HELP)
    host = r.domain(variable, host)
  }
  return Object.freeze({ host, port, mx: false, text: t })
}

/**
 * TRANSPORT_MAP: `DOMAIN=DESTINATION, .SUBDOMAINS=DESTINATION, ...`; SENDER_RELAY_MAP takes
 * `USER@DOMAIN=DESTINATION` entries too (`addresses`).
 */
function parseRouteMap(r: EnvReader, variable: 'TRANSPORT_MAP' | 'SENDER_RELAY_MAP', addresses = false): TransportRoute[] {
  const raw = r.raw(variable) ?? ''
  const routes: TransportRoute[] = []
  const keys = addresses ? 'DOMAIN or USER@DOMAIN' : 'DOMAIN'
  for (const entry of raw
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = entry.indexOf('=')
    if (eq <= 0)
      throw new ConfigError(variable, entry, `${keys}=DESTINATION entries separated by commas, the destination ${DESTINATION_HELP}`)
    const key = entry.slice(0, eq).trim().toLowerCase()
    const sub = key.startsWith('.')
    const at = key.lastIndexOf('@')
    const pattern =
      addresses && at > 0
        ? `${key.slice(0, at)}@${r.domain(variable, key.slice(at + 1))}`
        : (sub ? '.' : '') + r.domain(variable, sub ? key.slice(1) : key)
    if (routes.some((x) => x.pattern === pattern))
      throw new ConfigError(variable, entry, `each ${addresses ? 'key' : 'domain'} once (${pattern} is there twice)`)
    routes.push(Object.freeze({ pattern, destination: parseDestination(r, variable, entry.slice(eq + 1)) }))
  }
  return routes
}

/** A domain's entry in a list keyed by `example.org` (that domain) or `.example.org` (its subdomains): exact first, then the longest parent. */
function byDomain<T extends { pattern: string }>(entries: readonly T[], domain: string): T | undefined {
  const d = domain.toLowerCase().replace(/\.$/, '')
  const exact = entries.find((x) => x.pattern === d)
  if (exact) return exact
  let best: T | undefined
  for (const x of entries)
    if (x.pattern.startsWith('.') && d.endsWith(x.pattern) && (!best || x.pattern.length > best.pattern.length)) best = x
  return best
}

/** The TRANSPORT_MAP route of a domain: an exact entry first, then the longest `.parent` entry. */
export function transportFor(outbound: Pick<OutboundConfig, 'transportMap'>, domain: string): Destination | undefined {
  return byDomain(outbound.transportMap, domain)?.destination
}

/** The SENDER_RELAY_MAP route of a sender: its address, then its domain as TRANSPORT_MAP's entries are. */
export function senderRelayFor(outbound: Pick<OutboundConfig, 'senderRelayMap'>, sender: string): Destination | undefined {
  const at = sender.lastIndexOf('@')
  if (at <= 0) return undefined
  const address = sender.toLowerCase()
  return (outbound.senderRelayMap.find((x) => x.pattern === address) ?? byDomain(outbound.senderRelayMap, address.slice(at + 1)))
    ?.destination
}

/** The OUTBOUND_TLS_POLICY level of a domain, matched as TRANSPORT_MAP's entries are. */
export function tlsPolicyFor(outbound: Pick<OutboundConfig, 'tlsPolicy'>, domain: string): TlsLevel | undefined {
  return byDomain(outbound.tlsPolicy, domain)?.level
}

const TLS_LEVELS = ['none', 'may', 'encrypt', 'verify'] as const

/** OUTBOUND_TLS_POLICY: `DOMAIN:LEVEL` entries, as Postfix's smtp_tls_policy_maps (none, may, encrypt, verify). */
function parseTlsPolicy(r: EnvReader): TlsPolicyEntry[] {
  const entries: TlsPolicyEntry[] = []
  for (const entry of (r.raw('OUTBOUND_TLS_POLICY') ?? '')
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean)) {
    const colon = entry.lastIndexOf(':')
    const level = entry
      .slice(colon + 1)
      .trim()
      .toLowerCase() as TlsLevel
    if (colon <= 0 || !TLS_LEVELS.includes(level))
      throw new ConfigError('OUTBOUND_TLS_POLICY', entry, `DOMAIN:LEVEL entries separated by commas, LEVEL one of ${TLS_LEVELS.join(', ')}`)
    const key = entry.slice(0, colon).trim().toLowerCase()
    const sub = key.startsWith('.')
    const pattern = (sub ? '.' : '') + r.domain('OUTBOUND_TLS_POLICY', sub ? key.slice(1) : key)
    if (entries.some((x) => x.pattern === pattern))
      throw new ConfigError('OUTBOUND_TLS_POLICY', entry, `each domain once (${pattern} is there twice)`)
    entries.push(Object.freeze({ pattern, level }))
  }
  return entries
}

function parseDnsServers(r: EnvReader): string[] {
  return r.list('DNS_SERVERS').map((s) => {
    // node:dns setServers syntax: 192.0.2.1, 192.0.2.1:5353, 2001:db8::1, [2001:db8::1]:5353.
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([\d.]+):(\d+)$/.exec(s)
    const ip = m ? m[1] : s
    const port = m ? Number(m[2]) : 53
    if (!isIP(ip) || port < 1 || port > 65535)
      throw new ConfigError('DNS_SERVERS', s, 'IP addresses of DNS servers, each optionally with :PORT (127.0.0.1:5353, [::1]:53)')
    return s
  })
}

export function loadOutbound(r: EnvReader): OutboundConfig {
  const mode = r.oneOf('OUTBOUND_MODE', ['direct', 'relay', 'local'] as const, 'direct')

  const relayTls = r.oneOf('RELAY_TLS', ['starttls', 'tls', 'none'] as const, 'starttls')
  const relayHost = r.optional('RELAY_HOST')
  const user = r.optional('RELAY_USER')
  const password = r.optional('RELAY_PASSWORD')
  if (mode === 'relay' && !relayHost)
    throw new ConfigError('RELAY_HOST', undefined, 'the smarthost to send through, since OUTBOUND_MODE=relay')
  if (Boolean(user) !== Boolean(password))
    throw new ConfigError(user ? 'RELAY_PASSWORD' : 'RELAY_USER', undefined, 'RELAY_USER and RELAY_PASSWORD set together')
  // Credentials never cross the network in clear text.
  if (user && relayTls === 'none')
    throw new ConfigError('RELAY_TLS', 'none', 'starttls or tls, since RELAY_USER is set (no password is sent unencrypted)')
  let relay: OutboundConfig['relay']
  if (relayHost) {
    const dest = parseDestination(r, 'RELAY_HOST', relayHost, 0)
    if (dest.mx || dest.port) throw new ConfigError('RELAY_HOST', relayHost, 'a host name or address; the port goes in RELAY_PORT')
    relay = {
      host: dest.host,
      port: r.int('RELAY_PORT', relayTls === 'tls' ? 465 : relayTls === 'starttls' ? 587 : 25, 1, 65535),
      user,
      password,
      tls: relayTls,
      verify: r.bool('RELAY_TLS_VERIFY', true),
    }
  }

  const fallbackText = r.optional('FALLBACK_RELAY')
  const fallbackRelay = fallbackText ? parseDestination(r, 'FALLBACK_RELAY', fallbackText) : undefined
  if (fallbackRelay && (r.raw('UNKNOWN_RECIPIENT') ?? '').startsWith('catchall:'))
    throw new ConfigError(
      'FALLBACK_RELAY',
      fallbackText,
      'empty while UNKNOWN_RECIPIENT is a catch-all (unknown recipients go to one or the other)',
    )

  const relayDomains = [...new Set(r.list('RELAY_DOMAINS').map((d) => r.domain('RELAY_DOMAINS', d)))]
  const local = r.list('LOCAL_DOMAINS', [r.raw('MAIL_DOMAIN') ?? '']).map((d) => d.toLowerCase().replace(/\.$/, ''))
  const both = relayDomains.find((d) => local.includes(d))
  if (both) throw new ConfigError('RELAY_DOMAINS', r.raw('RELAY_DOMAINS'), `domains that are not in LOCAL_DOMAINS (${both} is in both)`)

  const bindAddress = r.optional('OUTBOUND_BIND_ADDRESS')
  if (bindAddress && !isIP(bindAddress)) throw new ConfigError('OUTBOUND_BIND_ADDRESS', bindAddress, 'an IP address of this host')
  const selfAddresses = r.list('OUTBOUND_SELF_ADDRESSES')
  for (const a of selfAddresses) if (!isIP(a)) throw new ConfigError('OUTBOUND_SELF_ADDRESSES', a, 'IP addresses, separated by commas')

  const delayText = r.optional('DELAY_WARNING')
  const delayWarningMs = !delayText || /^(off|0)$/i.test(delayText) ? null : r.duration('DELAY_WARNING', '0')

  const selector = r.string('DKIM_SELECTOR', 'facteur').toLowerCase()
  // RFC 6376 §3.1: a selector is one or more DNS labels.
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(selector))
    throw new ConfigError('DKIM_SELECTOR', selector, 'DNS labels such as facteur or 2026a')

  return {
    mode,
    relay,
    transportMap: parseRouteMap(r, 'TRANSPORT_MAP'),
    senderRelayMap: parseRouteMap(r, 'SENDER_RELAY_MAP', true),
    relayVerify: r.bool('RELAY_TLS_VERIFY', true),
    fallbackRelay,
    relayDomains,
    port: r.int('OUTBOUND_PORT', 25, 1, 65535),
    tls: r.oneOf('OUTBOUND_TLS', ['opportunistic', 'require'] as const, 'opportunistic'),
    tlsPolicy: parseTlsPolicy(r),
    mtaSts: r.bool('OUTBOUND_MTA_STS', true),
    mtaStsPort: r.int('OUTBOUND_MTA_STS_PORT', 443, 1, 65535),
    bindAddress,
    ipPreference: r.oneOf('OUTBOUND_IP_PREFERENCE', ['ipv4', 'ipv6', 'any'] as const, 'any'),
    concurrencyPerDomain: r.int('OUTBOUND_CONCURRENCY_PER_DOMAIN', 4, 1, 100),
    connectTimeoutMs: r.duration('OUTBOUND_CONNECT_TIMEOUT', '30s'),
    greetingTimeoutMs: r.duration('OUTBOUND_GREETING_TIMEOUT', '2m'),
    commandTimeoutMs: r.duration('OUTBOUND_COMMAND_TIMEOUT', '5m'),
    dnsServers: parseDnsServers(r),
    selfAddresses,
    delayWarningMs,
    dkimSelector: selector,
    arcSeal: r.bool('ARC_SEAL', true),
  }
}

/** Where `mailctl dkim keygen` writes a key and delivery reads it: CONFIG_DIR/dkim/DOMAIN.SELECTOR.key. */
export function dkimKeyFile(configDir: string, domain: string, selector: string): string {
  return `${configDir.replace(/\/$/, '')}/dkim/${domain.toLowerCase()}.${selector.toLowerCase()}.key`
}

/**
 * The key a domain's mail is signed with: DKIM_SELECTOR's when the domain has one, else the
 * domain's only key in CONFIG_DIR/dkim, whatever its selector (an imported domain keeps the
 * selector its published record names), the newest of several; null when it has none.
 */
export async function findDkimKey(
  configDir: string,
  domain: string,
  selector: string,
  /** LOCAL_DOMAINS: example.org.uk's keys are not example.org's. */
  localDomains: readonly string[] = [],
): Promise<{ file: string; selector: string; stamp: string } | null> {
  // The file's stamp (inode, size, mtime: @facteur/files' fileStamp) comes back with it: the
  // caller's cache needs no second stat(2).
  const stampOf = (st: { ino: number; size: number; mtimeMs: number }): string => `${st.ino}:${st.size}:${st.mtimeMs}`
  const preferred = dkimKeyFile(configDir, domain, selector)
  const own = await fs.stat(preferred).catch(() => null)
  if (own) return { file: preferred, selector: selector.toLowerCase(), stamp: stampOf(own) }
  const dir = path.dirname(preferred)
  const prefix = `${domain.toLowerCase()}.`
  const found: { file: string; selector: string; stamp: string; mtime: number }[] = []
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    const other = name.slice(prefix.length, -'.key'.length)
    // DOMAIN.SELECTOR.key, the selector DNS labels.
    if (!name.startsWith(prefix) || !name.endsWith('.key') || !/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(other)) continue
    if (localDomains.some((d) => d.length > domain.length && name.startsWith(`${d.toLowerCase()}.`))) continue
    const st = await fs.stat(path.join(dir, name)).catch(() => null)
    if (st?.isFile()) found.push({ file: path.join(dir, name), selector: other, stamp: stampOf(st), mtime: st.mtimeMs })
  }
  found.sort((a, b) => b.mtime - a.mtime)
  return found[0] ? { file: found[0].file, selector: found[0].selector, stamp: found[0].stamp } : null
}

/**
 * A resolver asking DNS_SERVERS (the system's resolvers when there are none): 2 tries of
 * `timeoutMs` each. Delivery, the filter and the MX's policy each make one.
 */
export function resolverFor(servers: readonly string[], timeoutMs = 3000): dns.Resolver {
  const resolver = new dns.Resolver({ timeout: timeoutMs, tries: 2 })
  if (servers.length) resolver.setServers([...servers])
  return resolver
}
