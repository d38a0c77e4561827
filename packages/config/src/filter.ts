// The content filter's settings: the service itself (its port, the engines it calls, the
// thresholds of its verdict) and the callers' side (where it is, how long to wait, what to do
// when it cannot answer). Both sides read the same variables from the same .env.
import { ConfigError, type EnvReader } from './env.js'

export type FilterFailure = 'tempfail' | 'accept'
export type SpamEngine = 'spamassassin' | 'rspamd' | 'off'

export type FilterConfig = Readonly<{
  /** The filter's HTTP listener (its API and /healthz): FILTER_LISTEN:FILTER_PORT. */
  listen: string
  port: number
  /**
   * Where callers reach the filter; null when FILTER_URL=off (mail is queued unscanned).
   * `auto` is true when FILTER_URL was left empty: the supervisor (process mode) then starts the
   * filter and hands its URL to the callers; a caller run alone uses http://127.0.0.1:FILTER_PORT.
   */
  url: string | null
  auto: boolean
  /** The callers' wait for a verdict; the filter gives each engine FILTER_SCAN_TIMEOUT. */
  timeoutMs: number
  scanTimeoutMs: number
  /** The filter unreachable, slow, or one of its engines down: 451 4.7.1, or queue it marked unscanned. */
  failure: FilterFailure
  clamav: Readonly<{ enabled: boolean; host: string; port: number }>
  spam: Readonly<{
    engine: SpamEngine
    spamd: Readonly<{ host: string; port: number }>
    rspamdUrl: string
    /** Scores at or above which a message is tagged (X-Spam-Flag), filed as junk, refused. */
    tagScore: number
    junkScore: number
    rejectScore: number
    /** Larger messages skip the spam scan (never the virus scan). */
    maxSize: number
    /** Mail from authenticated users: scanned and tagged, refused above SPAM_REJECT_SCORE, or not scanned. */
    outbound: 'tag' | 'reject' | 'off'
  }>
  /** DMARC p=reject refused with 550 5.7.1 (p=quarantine filed as junk); false: both filed as junk. */
  dmarcEnforce: boolean
  /** What an SPF `fail` of MAIL FROM alone does (DMARC decides the rest). */
  spfFail: 'reject' | 'junk' | 'tag'
  /** FILTER_BANNED_EXTENSIONS: attachments whose name ends so are refused (lower case, no dot; empty: none). */
  bannedExtensions: ReadonlySet<string>
}>

/**
 * Executables and scripts Windows runs when opened, as Gmail and amavis refuse them: no mail
 * client shows them safely, and malware comes in them more than in anything else.
 */
export const DEFAULT_BANNED_EXTENSIONS =
  'ade,adp,bat,chm,cmd,com,cpl,exe,hta,ins,isp,jar,js,jse,lib,lnk,mde,msc,msi,msp,mst,pif,ps1,scr,sct,shb,sys,vb,vbe,vbs,vxd,wsc,wsf,wsh'

const DEFAULT_PORT = 8030

export function loadFilterConfig(r: EnvReader): FilterConfig {
  const port = r.port('FILTER_PORT', DEFAULT_PORT)
  const urlText = r.string('FILTER_URL', '')
  let url: string | null
  if (urlText.toLowerCase() === 'off') url = null
  else if (urlText === '') url = `http://127.0.0.1:${port || DEFAULT_PORT}`
  else {
    let parsed: URL | null = null
    try {
      parsed = new URL(urlText)
    } catch {
      parsed = null
    }
    if (!parsed || parsed.protocol !== 'http:' || parsed.search || parsed.hash)
      throw new ConfigError(
        'FILTER_URL',
        urlText,
        "the filter's base URL such as http://filter:8030, empty for the appliance's own filter, or off",
      )
    url = urlText.replace(/\/+$/, '')
  }

  const tagScore = score(r, 'SPAM_TAG_SCORE', 5)
  const junkScore = score(r, 'SPAM_JUNK_SCORE', 8)
  const rejectScore = score(r, 'SPAM_REJECT_SCORE', 15)
  if (junkScore < tagScore)
    throw new ConfigError('SPAM_JUNK_SCORE', r.raw('SPAM_JUNK_SCORE'), `a score no lower than SPAM_TAG_SCORE (${tagScore})`)
  if (rejectScore < junkScore)
    throw new ConfigError('SPAM_REJECT_SCORE', r.raw('SPAM_REJECT_SCORE'), `a score no lower than SPAM_JUNK_SCORE (${junkScore})`)

  const rspamdUrl = r.string('RSPAMD_URL', 'http://127.0.0.1:11333').replace(/\/+$/, '')
  if (!/^http:\/\/[^/?#]+$/.test(rspamdUrl)) throw new ConfigError('RSPAMD_URL', rspamdUrl, "rspamd's normal worker as http://HOST:PORT")

  return {
    listen: r.string('FILTER_LISTEN', '127.0.0.1'),
    port,
    url,
    auto: urlText === '',
    timeoutMs: r.duration('FILTER_TIMEOUT', '60s'),
    scanTimeoutMs: r.duration('FILTER_SCAN_TIMEOUT', '30s'),
    failure: r.oneOf('FILTER_FAILURE', ['tempfail', 'accept'] as const, 'tempfail'),
    clamav: {
      enabled: r.bool('CLAMAV_ENABLED', true),
      host: r.string('CLAMAV_HOST', '127.0.0.1'),
      port: r.port('CLAMAV_PORT', 3310),
    },
    spam: {
      engine: r.oneOf('SPAM_ENGINE', ['spamassassin', 'rspamd', 'off'] as const, 'spamassassin'),
      spamd: { host: r.string('SPAMD_HOST', '127.0.0.1'), port: r.port('SPAMD_PORT', 783) },
      rspamdUrl,
      tagScore,
      junkScore,
      rejectScore,
      maxSize: r.size('SPAM_MAX_SIZE', 2 * 1024 * 1024),
      outbound: r.oneOf('SPAM_OUTBOUND', ['tag', 'reject', 'off'] as const, 'tag'),
    },
    dmarcEnforce: r.bool('DMARC_ENFORCE', true),
    spfFail: r.oneOf('SPF_FAIL', ['reject', 'junk', 'tag'] as const, 'tag'),
    bannedExtensions: bannedExtensions(r),
  }
}

/** A comma-separated list of extensions (a leading dot allowed), or `none`. */
function bannedExtensions(r: EnvReader): ReadonlySet<string> {
  const text = r.string('FILTER_BANNED_EXTENSIONS', DEFAULT_BANNED_EXTENSIONS).trim()
  if (text.toLowerCase() === 'none') return new Set()
  const list = text.split(',').map((e) => e.trim().replace(/^\./, '').toLowerCase())
  const bad = list.find((e) => !/^[a-z0-9_-]{1,16}$/.test(e))
  if (bad !== undefined)
    throw new ConfigError('FILTER_BANNED_EXTENSIONS', text, 'file extensions separated by commas (exe,scr,js), or none')
  return new Set(list)
}

/** A spam score: a decimal number such as 5, 6.5 or -1. */
function score(r: EnvReader, name: string, def: number): number {
  const v = r.raw(name)
  if (v === undefined || v === '') return def
  if (!/^-?\d+(\.\d+)?$/.test(v)) throw new ConfigError(name, v, 'a score such as 5 or 6.5')
  return Number(v)
}
