// DNS blocklists (RFC 5782, SMTP_DNSBL): the client's address is looked up in each zone when it
// connects, and a listed client's recipients are refused at RCPT with 554 5.7.1, as Postfix's
// reject_rbl_client does, with the list's TXT reason; with weights, when its listings weigh
// SMTP_DNSBL_THRESHOLD or more (postscreen's scoring: an allowlist's negative weight offsets). Mail to postmaster and abuse still goes
// through (RFC 5321 §4.5.1, RFC 2142): a listed sender can still reach a person here.
import { promises as dns } from 'node:dns'
import { reversedLabels, type Config } from '@facteur/config'
import type { CheckResult } from '@facteur/health'
import type { Logger } from '@facteur/logging'
import { SmtpError } from '@facteur/smtp-error'
import { recentAnswers } from './lookups.js'

export type Listing = { zone: string; answer: string; reason: string }

/** How long a zone that refused our queries keeps the health degraded, and its warning quiet. */
const REFUSAL_SHOWN_MS = 3_600_000

export type Dnsbl = {
  /**
   * The client's first listing (of a positive weight, in SMTP_DNSBL's order) when its listings
   * weigh SMTP_DNSBL_THRESHOLD or more, else null. It never rejects.
   */
  lookup: (ip: string) => Promise<Listing | null>
  /** Degraded while a zone has refused our queries within the hour (nobody is listed by it). */
  health: () => CheckResult
}

/** SMTP_DNSBL's zones, or null when there are none. */
export function dnsblLookup(config: Config, resolver: dns.Resolver, logger: Logger): Dnsbl | null {
  if (!config.dnsbl.length) return null
  const refused = new Map<string, { at: number; answer: string; warned: number }>()

  const inZone = async (name: string, zone: Config['dnsbl'][number]): Promise<Listing | null> => {
    let answers: string[]
    try {
      answers = await resolver.resolve4(name)
    } catch (err) {
      // NXDOMAIN and NODATA: not listed. A list that cannot be asked lists nobody (Postfix alike).
      const code = (err as NodeJS.ErrnoException).code
      if (code !== dns.NOTFOUND && code !== dns.NODATA) logger.debug('dnsbl lookup failed', { zone: zone.zone, err: code })
      return null
    }
    const answer = answers.find((a) => zone.lists(a))
    if (!answer) {
      const refusal = answers.find((a) => a.startsWith('127.255.255.'))
      if (refusal) {
        // Health shows the last refusal; the log says it once an hour.
        const now = Date.now()
        let warned = refused.get(zone.zone)?.warned ?? 0
        if (now - warned >= REFUSAL_SHOWN_MS) {
          warned = now
          logger.warn('dnsbl refused our query: nobody is listed by it', { variable: 'SMTP_DNSBL', zone: zone.zone, answer: refusal })
        }
        refused.set(zone.zone, { at: now, answer: refusal, warned })
      }
      return null
    }
    return { zone: zone.zone, answer, reason: await reason(name) }
  }

  const reason = async (name: string): Promise<string> => {
    try {
      // RFC 5782 §2.1: the TXT record says why; printable ASCII only, it goes into our reply.
      const text = (await resolver.resolveTxt(name)).map((parts) => parts.join(''))[0] ?? ''
      return text.replace(/[^\x20-\x7e]/g, '').slice(0, 200)
    } catch {
      return ''
    }
  }

  const lookup = async (ip: string): Promise<Listing | null> => {
    const labels = reversedLabels(ip)
    // Every zone at once; the first listing in SMTP_DNSBL's order is the one reported.
    const found = await Promise.all(config.dnsbl.map((zone) => inZone(`${labels}.${zone.zone}`, zone)))
    const score = found.reduce((sum, l, i) => sum + (l ? config.dnsbl[i].weight : 0), 0)
    if (score < config.dnsblThreshold) return null
    return found.find((l, i) => l !== null && config.dnsbl[i].weight > 0) ?? null
  }

  return {
    lookup: recentAnswers(lookup, null),
    health: () => {
      const now = Date.now()
      const recent = [...refused].filter(([, r]) => now - r.at < REFUSAL_SHOWN_MS)
      if (!recent.length) return { status: 'ok', detail: config.dnsbl.map((z) => z.zone).join(', ') }
      const zones = recent.map(([zone, r]) => `${zone} (${r.answer})`).join(', ')
      return {
        status: 'degraded',
        detail: `SMTP_DNSBL: ${zones} refused our queries, nobody is listed by it (a public resolver? see DNS_SERVERS)`,
      }
    },
  }
}

const REACHABLE = new Set(['postmaster', 'abuse'])

/** postmaster@ and abuse@ (RFC 5321 §4.5.1, RFC 2142) take mail from clients the MX's checks of a client refuse. */
export function alwaysReachable(recipient: string): boolean {
  const at = recipient.lastIndexOf('@')
  return REACHABLE.has((at < 0 ? recipient : recipient.slice(0, at)).toLowerCase())
}

/** The refusal of one recipient for a listed client, or null (not listed, or a role account). */
export function refuseListed(listing: Listing | null, ip: string, recipient: string): SmtpError | null {
  if (!listing || alwaysReachable(recipient)) return null
  const why = listing.reason ? `; ${listing.reason}` : ''
  return new SmtpError(554, '7.1', `Service unavailable; Client host [${ip}] blocked using ${listing.zone}${why}`)
}
