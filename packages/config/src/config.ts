// The appliance's settings. Every variable here is in env.example with its default.
import path from 'node:path'
import { isIP } from 'node:net'
import { ConfigError, EnvReader } from './env.js'
import { inNetworks, parseNetworks, type Network } from './networks.js'
import { loadDnsbl, type Dnsbl } from './dnsbl.js'
import { mailboxBase } from './mailbox-path.js'
import { loadOutbound, type OutboundConfig } from './outbound.js'
import { loadSubmissionConfig, type SubmissionConfig } from './submission.js'
import { loadFilterConfig, type FilterConfig } from './filter.js'
import { loadProxyConfig, type ProxyConfig } from './proxy.js'
import { loadSupervisorConfig, type SupervisorConfig } from './supervisor.js'

export type MailboxFormat = 'mbox' | 'maildir'
export type UnknownRecipient = { kind: 'reject' } | { kind: 'catchall'; address: string }

export type Config = Readonly<{
  mailDomain: string
  hostname: string
  localDomains: readonly string[]
  postmaster: string
  configDir: string
  spoolDir: string
  mailDir: string
  /** quota: MAILBOX_QUOTA in bytes, 0 for none (a user's own, in the users file, comes first). */
  mailbox: Readonly<{ format: MailboxFormat; pathTemplate: string; base: string; uid?: number; gid?: number; quota: number }>
  /** LOCAL_TRANSPORT: local copies written into the mailboxes by delivery, or handed to an LMTP server (Dovecot's). */
  localTransport: LocalTransport
  smtp: Readonly<{
    port: number
    listen: string
    maxClients: number
    /** Sessions from one client address (IPv6: its /64) at once, TRUSTED_NETWORKS apart; 0: no limit. */
    maxClientsPerIp: number
    /** SMTP_CONNECTION_RATE_LIMIT: connections a minute from one client on :25; 0 for no limit. */
    connectionRateLimit: number
    /** SMTP_MAX_TRANSACTIONS: messages received at once on :25 (first accepted RCPT to the reply after DATA); 0: no limit. */
    maxTransactions: number
    /** A command line, or a message after 354 (plus minDataRate), must arrive within it. */
    timeoutMs: number
    /** Bytes per second that extend the DATA deadline by one second (Postfix smtpd_min_data_rate). */
    minDataRate: number
    /** Pause before the 220 greeting: a client that talks first is refused (early talker). */
    greetingDelayMs: number
    /** Errors (4xx/5xx replies) in a session without a message taken, past which each command waits errorSleepMs; 0: never. */
    softErrorLimit: number
    /** Errors at which the session is closed with 421 4.7.0; 0: never. */
    hardErrorLimit: number
    errorSleepMs: number
    sizeLimit: number
    maxRecipients: number
    headerSizeLimit: number
    headerCountLimit: number
  }>
  unknownRecipient: UnknownRecipient
  /** A MAIL FROM domain with no MX, A or AAAA: defer (450, Postfix's default), reject (550), or accept. */
  unknownSenderDomain: 'defer' | 'reject' | 'accept'
  /** SMTP_HELO_CHECK: the HELO/EHLO name asked to be a valid host name (invalid) and fully qualified (fqdn). */
  heloCheck: 'invalid' | 'fqdn' | 'off'
  /** SMTP_CLIENT_PTR_CHECK: the client's address has a PTR record (reverse), one that resolves back to it (forward). */
  clientPtrCheck: 'off' | 'reverse' | 'forward'
  recipientDelimiter: string
  /** SRS_DOMAIN: where forwarded copies' reverse-paths are rewritten to (SRS); null: not rewritten. */
  srsDomain: string | null
  /** SRS_EXCLUDE_DOMAINS: senders of these domains (`.domain`: its subdomains) keep their address when forwarded (postsrsd's). */
  srsExclude: readonly string[]
  /** ALWAYS_BCC: an address every accepted message is also delivered to (an archive); null: none. */
  alwaysBcc: string | null
  /** DSN_LANGUAGE: the language of the notices delivery sends (bounces, delays): en, or fr (then English). */
  dsnLanguage: 'en' | 'fr'
  /** QUOTA_WARNING: the usages (percent of a mailbox's quota) whose crossing sends its owner a warning, ascending; [] none. */
  quotaWarnings: readonly number[]
  trustedNetworks: Network
  /** SHARED_CLIENT_ADDRESSES: a proxy's addresses that every client behind it appears from. */
  sharedClients: Network
  /** GREYLIST_DELAY: how long a first-time (client network, sender, recipient) waits; 0: no greylisting. */
  greylistDelayMs: number
  /** GREYLIST_EXEMPT: client networks, and sender domains (with their subdomains), never greylisted. */
  greylistExempt: Readonly<{ networks: Network; domains: readonly string[] }>
  /** SMTP_DNSBL: the MX's clients listed in one of these zones are refused at RCPT. */
  dnsbl: readonly Dnsbl[]
  /** SMTP_DNSBL_THRESHOLD: the weight of listings at which a client is refused (postscreen_dnsbl_threshold). */
  dnsblThreshold: number
  tls: Readonly<{ cert?: string; key?: string }>
  log: Readonly<{ level: string; format: 'auto' | 'json' | 'text' }>
  health: Readonly<{ listen: string; ingressPort: number; deliveryPort: number }>
  supervisor: SupervisorConfig
  queue: Readonly<{ workers: number; scanIntervalMs: number; retryMinMs: number; retryMaxMs: number; lifetimeMs: number }>
  outbound: OutboundConfig
  submission: SubmissionConfig
  filter: FilterConfig
  proxy: ProxyConfig
}>

const LEVELS = ['error', 'warn', 'info', 'debug'] as const

export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const r = new EnvReader(env)
  const mailDomain = r.domain('MAIL_DOMAIN', r.string('MAIL_DOMAIN'))
  const hostname = r.domain('MAIL_HOSTNAME', r.string('MAIL_HOSTNAME', `mail.${mailDomain}`))
  const localDomains = [...new Set(r.list('LOCAL_DOMAINS', [mailDomain]).map((d) => r.domain('LOCAL_DOMAINS', d)))]
  const postmaster = r.address('POSTMASTER_ADDRESS', r.string('POSTMASTER_ADDRESS', `postmaster@${mailDomain}`)).toLowerCase()

  const absolute = (name: string, def: string): string => {
    const v = r.string(name, def)
    if (!path.isAbsolute(v)) throw new ConfigError(name, v, 'an absolute path')
    return path.resolve(v)
  }
  const configDir = absolute('CONFIG_DIR', '/etc/facteur')
  const spoolDir = absolute('SPOOL_DIR', '/var/spool/facteur')
  const mailDir = absolute('MAIL_DIR', '/var/mail')

  const format = r.oneOf('MAILBOX_FORMAT', ['mbox', 'maildir'] as const, 'mbox')
  const defaultTemplate = localDomains.length > 1 ? `${mailDir}/%d/%u` : `${mailDir}/%u`
  const pathTemplate = r.string('MAILBOX_PATH', defaultTemplate)
  if (!path.isAbsolute(pathTemplate) || !/%[ue]/.test(pathTemplate))
    throw new ConfigError('MAILBOX_PATH', pathTemplate, 'an absolute path template holding %u or %e, e.g. /var/mail/%u')
  if (/%[^ude%]/.test(pathTemplate)) throw new ConfigError('MAILBOX_PATH', pathTemplate, 'only the placeholders %u, %d, %e')
  if (localDomains.length > 1 && !/%[de]/.test(pathTemplate))
    throw new ConfigError(
      'MAILBOX_PATH',
      pathTemplate,
      `a template holding %d or %e, since LOCAL_DOMAINS names ${localDomains.length} domains (users of two domains would share a mailbox)`,
    )
  const uid = r.raw('MAIL_UID') ? r.int('MAIL_UID', 0, 0, 2 ** 31 - 1) : undefined
  const gid = r.raw('MAIL_GID') ? r.int('MAIL_GID', 0, 0, 2 ** 31 - 1) : undefined
  if (uid !== undefined && process.getuid && process.getuid() !== 0 && process.getuid() !== uid)
    throw new ConfigError(
      'MAIL_UID',
      String(uid),
      `the uid this service runs as (${process.getuid()}), or run it as root so it can hand files to that uid`,
    )

  const localTransport = parseLocalTransport(r.string('LOCAL_TRANSPORT', 'mailbox'))
  const quota = r.size('MAILBOX_QUOTA', 0)
  if (quota && localTransport.kind === 'lmtp')
    throw new ConfigError(
      'MAILBOX_QUOTA',
      r.raw('MAILBOX_QUOTA'),
      "0 with LOCAL_TRANSPORT=lmtp: the LMTP server keeps the mailboxes and their quotas (Dovecot's quota_rule; users' own from the users file)",
    )

  const unknownText = r.string('UNKNOWN_RECIPIENT', 'reject')
  let unknownRecipient: UnknownRecipient
  if (unknownText === 'reject') unknownRecipient = { kind: 'reject' }
  else if (unknownText.startsWith('catchall:'))
    unknownRecipient = { kind: 'catchall', address: r.address('UNKNOWN_RECIPIENT', unknownText.slice('catchall:'.length)).toLowerCase() }
  else throw new ConfigError('UNKNOWN_RECIPIENT', unknownText, 'reject or catchall:ADDRESS')

  const delimiter = r.raw('RECIPIENT_DELIMITER') ?? '+'
  if (delimiter.length > 1 || /[@\s"%!/]/.test(delimiter))
    throw new ConfigError('RECIPIENT_DELIMITER', delimiter, 'one character such as + or -, or empty to turn sub-addressing off')

  const srsText = r.string('SRS_DOMAIN', localDomains.includes(mailDomain) ? mailDomain : localDomains[0]).toLowerCase()
  const srsDomain = srsText === 'none' ? null : r.domain('SRS_DOMAIN', srsText)
  if (srsDomain && !localDomains.includes(srsDomain))
    throw new ConfigError('SRS_DOMAIN', srsText, 'one of LOCAL_DOMAINS (bounces to its SRS addresses come back to this MX), or none')

  const bccText = r.optional('ALWAYS_BCC')
  const alwaysBcc = bccText ? r.address('ALWAYS_BCC', bccText).toLowerCase() : null

  const cert = r.optional('TLS_CERT')
  const key = r.optional('TLS_KEY')
  if (Boolean(cert) !== Boolean(key)) throw new ConfigError(cert ? 'TLS_KEY' : 'TLS_CERT', undefined, 'TLS_CERT and TLS_KEY set together')

  const smtpTimeoutMs = r.duration('SMTP_TIMEOUT', '5m')
  if (smtpTimeoutMs < 1000) throw new ConfigError('SMTP_TIMEOUT', r.raw('SMTP_TIMEOUT'), 'a duration of at least 1s, like 5m')

  const errorSleepMs = r.duration('SMTP_ERROR_SLEEP', '1s')
  if (errorSleepMs > 60_000) throw new ConfigError('SMTP_ERROR_SLEEP', r.raw('SMTP_ERROR_SLEEP'), 'a duration of at most 60s, like 1s')

  const retryMinMs = r.duration('QUEUE_RETRY_MIN', '5m')
  const retryMaxMs = r.duration('QUEUE_RETRY_MAX', '1h')
  if (retryMaxMs < retryMinMs)
    throw new ConfigError('QUEUE_RETRY_MAX', r.raw('QUEUE_RETRY_MAX'), `a duration no shorter than QUEUE_RETRY_MIN`)

  const trustedNetworks = parseNetworks('TRUSTED_NETWORKS', r.list('TRUSTED_NETWORKS'))
  const config: Config = {
    mailDomain,
    hostname,
    localDomains,
    postmaster,
    configDir,
    spoolDir,
    mailDir,
    mailbox: { format, pathTemplate, base: mailboxBase(pathTemplate), uid, gid: gid ?? uid, quota },
    localTransport,
    smtp: {
      port: r.port('SMTP_PORT', 25),
      listen: r.string('SMTP_LISTEN', '0.0.0.0'),
      maxClients: r.int('SMTP_MAX_CLIENTS', 200, 1, 100_000),
      maxClientsPerIp: r.int('SMTP_MAX_CLIENTS_PER_IP', 50, 0, 100_000),
      connectionRateLimit: r.int('SMTP_CONNECTION_RATE_LIMIT', 0, 0, 1_000_000),
      maxTransactions: r.int('SMTP_MAX_TRANSACTIONS', 32, 0, 100_000),
      timeoutMs: smtpTimeoutMs,
      minDataRate: r.int('SMTP_MIN_DATA_RATE', 500, 1, 1_000_000_000),
      greetingDelayMs: r.duration('SMTP_GREETING_DELAY', '25ms'),
      softErrorLimit: r.int('SMTP_SOFT_ERROR_LIMIT', 10, 0, 1000),
      hardErrorLimit: r.int('SMTP_HARD_ERROR_LIMIT', 20, 0, 1000),
      errorSleepMs,
      sizeLimit: r.size('MESSAGE_SIZE_LIMIT', 25 * 1024 * 1024),
      maxRecipients: r.int('MAX_RECIPIENTS', 100, 1, 100_000),
      headerSizeLimit: r.size('HEADER_SIZE_LIMIT', 256 * 1024),
      headerCountLimit: r.int('HEADER_COUNT_LIMIT', 1000, 10, 100_000),
    },
    unknownRecipient,
    unknownSenderDomain: r.oneOf('UNKNOWN_SENDER_DOMAIN', ['defer', 'reject', 'accept'] as const, 'defer'),
    heloCheck: r.oneOf('SMTP_HELO_CHECK', ['invalid', 'fqdn', 'off'] as const, 'invalid'),
    clientPtrCheck: r.oneOf('SMTP_CLIENT_PTR_CHECK', ['off', 'reverse', 'forward'] as const, 'off'),
    recipientDelimiter: delimiter,
    srsDomain,
    srsExclude: r
      .list('SRS_EXCLUDE_DOMAINS')
      .map((d) => (d.startsWith('.') ? `.${r.domain('SRS_EXCLUDE_DOMAINS', d.slice(1))}` : r.domain('SRS_EXCLUDE_DOMAINS', d))),
    alwaysBcc,
    dsnLanguage: r.oneOf('DSN_LANGUAGE', ['en', 'fr'] as const, 'en'),
    quotaWarnings: parseQuotaWarnings(r.string('QUOTA_WARNING', '80,95')),
    trustedNetworks,
    sharedClients: sharedClients(r, trustedNetworks),
    dnsbl: loadDnsbl(r),
    dnsblThreshold: r.int('SMTP_DNSBL_THRESHOLD', 1, 1, 1000),
    greylistDelayMs: greylistDelay(r),
    greylistExempt: greylistExempt(r),
    tls: { cert, key },
    log: { level: r.oneOf('LOG_LEVEL', LEVELS, 'info'), format: r.oneOf('LOG_FORMAT', ['auto', 'json', 'text'] as const, 'auto') },
    health: {
      listen: r.string('HEALTH_LISTEN', '127.0.0.1'),
      ingressPort: r.port('INGRESS_HEALTH_PORT', 8025),
      deliveryPort: r.port('DELIVERY_HEALTH_PORT', 8026),
    },
    supervisor: loadSupervisorConfig(r, spoolDir, postmaster),
    queue: {
      workers: r.int('DELIVERY_WORKERS', 32, 1, 256),
      scanIntervalMs: r.duration('QUEUE_SCAN_INTERVAL', '1s'),
      retryMinMs,
      retryMaxMs,
      lifetimeMs: r.duration('MAX_QUEUE_LIFETIME', '5d'),
    },
    outbound: loadOutbound(r),
    submission: loadSubmissionConfig(r),
    filter: loadFilterConfig(r),
    proxy: loadProxyConfig(r),
  }
  return deepFreeze(config)
}

function deepFreeze<T>(o: T): T {
  // Plain objects and arrays only: a BlockList keeps its own state.
  if (o && typeof o === 'object' && (Array.isArray(o) || Object.getPrototypeOf(o) === Object.prototype)) {
    Object.freeze(o)
    for (const v of Object.values(o)) deepFreeze(v)
  }
  return o
}

/**
 * SHARED_CLIENT_ADDRESSES: they stand for every client behind them, so none may be trusted to
 * relay. Two CIDR blocks overlap only if one holds the other, and so the other's first address.
 */
function sharedClients(r: EnvReader, trusted: Network): Network {
  const shared = parseNetworks('SHARED_CLIENT_ADDRESSES', r.list('SHARED_CLIENT_ADDRESSES'))
  const entries = (n: Network): string[] => n.text.split(',').filter(Boolean)
  const both =
    entries(shared).find((e) => inNetworks(trusted, e.split('/')[0])) ?? entries(trusted).find((e) => inNetworks(shared, e.split('/')[0]))
  if (both)
    throw new ConfigError(
      'SHARED_CLIENT_ADDRESSES',
      shared.text,
      `addresses outside TRUSTED_NETWORKS (${both} is in both): every client behind them could relay`,
    )
  return shared
}

/** GREYLIST_DELAY: a retry must be able to pass within the greylist's two-day window; a day at most. */
function greylistDelay(r: EnvReader): number {
  const ms = r.duration('GREYLIST_DELAY', '0s')
  if (ms > 86_400_000)
    throw new ConfigError('GREYLIST_DELAY', r.raw('GREYLIST_DELAY'), 'a duration of at most 1d (postgrey: 5m), or 0 for no greylisting')
  return ms
}

/** GREYLIST_EXEMPT: its addresses and CIDRs are client networks, its other entries sender domains. */
function greylistExempt(r: EnvReader): Config['greylistExempt'] {
  const entries = r.list('GREYLIST_EXEMPT')
  const isNetwork = (e: string): boolean => isIP(e.split('/')[0]) !== 0
  return Object.freeze({
    networks: parseNetworks('GREYLIST_EXEMPT', entries.filter(isNetwork)),
    domains: Object.freeze(entries.filter((e) => !isNetwork(e)).map((d) => r.domain('GREYLIST_EXEMPT', d))),
  })
}

export type LocalTransport = { kind: 'mailbox' } | { kind: 'lmtp'; host: string; port: number }

/** `mailbox`, or `lmtp:HOST[:PORT]` (port 24 by default, RFC 2033 §4; an IPv6 host in brackets). */
function parseLocalTransport(text: string): LocalTransport {
  if (text === 'mailbox') return { kind: 'mailbox' }
  const m = /^lmtp:(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(text)
  const port = m?.[3] === undefined ? 24 : Number(m[3])
  if (!m || port < 1 || port > 65535)
    throw new ConfigError('LOCAL_TRANSPORT', text, "mailbox, or lmtp:HOST[:PORT] (Dovecot's LMTP, e.g. lmtp:dovecot:24)")
  return { kind: 'lmtp', host: m[1] ?? m[2], port }
}

/** QUOTA_WARNING: `off`, or percentages from 1 to 99 separated by commas (Dovecot's quota_warning, as docker-mailserver sets 80 and 95). */
function parseQuotaWarnings(text: string): number[] {
  if (/^(off|none|0)?$/i.test(text.trim())) return []
  const values = text.split(',').map((p) => p.trim().replace(/%$/, ''))
  if (values.some((v) => !/^\d{1,2}$/.test(v) || Number(v) < 1))
    throw new ConfigError('QUOTA_WARNING', text, 'off, or percentages from 1 to 99 separated by commas (80,95)')
  return [...new Set(values.map(Number))].sort((a, b) => a - b)
}
