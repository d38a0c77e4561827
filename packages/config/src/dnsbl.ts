// SMTP_DNSBL: the DNS blocklists (RFC 5782) the MX looks its clients up in, written as Postfix's
// postscreen_dnsbl_sites takes them: a zone, optionally `=` the answers that count as a listing,
// each octet a number or a bracketed list of numbers and ranges (zen.spamhaus.org=127.0.0.[2..11]),
// optionally `*` a weight (1 by default; negative for an allowlist such as list.dnswl.org). A
// client whose listings weigh SMTP_DNSBL_THRESHOLD (1) or more is refused, as postscreen's
// postscreen_dnsbl_threshold decides: with the defaults, any listing.
import { isIP } from 'node:net'
import { ConfigError, type EnvReader } from './env.js'

export type Dnsbl = Readonly<{
  zone: string
  /** Whether an A record of the zone for a client lists it. */
  lists: (answer: string) => boolean
  /** What a listing adds to the client's score (negative: an allowlist). */
  weight: number
}>

const EXPECTED =
  'DNS blocklist zones separated by commas, each optionally with the answers that count and a weight, as in zen.spamhaus.org=127.0.0.[2..11]*3'

export function loadDnsbl(r: EnvReader): readonly Dnsbl[] {
  return Object.freeze(
    r.list('SMTP_DNSBL').map((entry) => {
      const star = /^(.*)\*(-?\d{1,3})$/.exec(entry)
      const site = star ? star[1] : entry
      const weight = star ? Number(star[2]) : 1
      const eq = site.indexOf('=')
      const zone = r.domain('SMTP_DNSBL', eq < 0 ? site : site.slice(0, eq))
      const filter = eq < 0 ? null : parseAnswers(site.slice(eq + 1))
      if ((eq >= 0 && !filter) || weight === 0) throw new ConfigError('SMTP_DNSBL', entry, EXPECTED)
      return Object.freeze({ zone, weight, lists: (answer: string) => listing(answer) && (!filter || filter(answer)) })
    }),
  )
}

/**
 * RFC 5782 §2.1: a listing is an A record in 127.0.0.0/8; anything else is a resolver that
 * rewrites NXDOMAIN, not a listing. 127.255.255.0/24 is Spamhaus's "query refused" (from a public
 * resolver, or over its free quota), which would otherwise list every client.
 */
function listing(answer: string): boolean {
  return isIP(answer) === 4 && answer.startsWith('127.') && !answer.startsWith('127.255.255.')
}

/** `127.0.0.2`, `127.0.0.[2..11]`, `127.0.[0;1].[2;4..6]`: one test per octet. */
function parseAnswers(text: string): ((answer: string) => boolean) | null {
  const octets = text.match(/(\[[^\]]*\]|[^.[\]]+)/g)
  if (!octets || octets.length !== 4 || octets.join('.') !== text) return null
  const tests: ((n: number) => boolean)[] = []
  for (const octet of octets) {
    const parts = octet.startsWith('[') ? octet.slice(1, -1).split(';') : [octet]
    const ranges: [number, number][] = []
    for (const part of parts) {
      const m = /^(\d{1,3})(?:\.\.(\d{1,3}))?$/.exec(part)
      if (!m) return null
      const [lo, hi] = [Number(m[1]), Number(m[2] ?? m[1])]
      if (hi > 255 || lo > hi) return null
      ranges.push([lo, hi])
    }
    tests.push((n) => ranges.some(([lo, hi]) => n >= lo && n <= hi))
  }
  return (answer) => answer.split('.').every((o, i) => tests[i](Number(o)))
}
