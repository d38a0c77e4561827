// Sender authentication with mailauth: SPF of MAIL FROM (RFC 7208 §2.4) and of HELO (§2.3),
// DKIM signatures (RFC 6376 §6), DMARC and its policy (RFC 7489 §6.6), the ARC chain
// (RFC 8617 §5.2), written as one Authentication-Results field (RFC 8601 §2.2) with our
// MAIL_HOSTNAME as authserv-id. Forged fields claiming that id are counted (RFC 8601 §5).
// A client that came through a proxy hiding its address (Docker's userland proxy, a balancer in
// SHARED_CLIENT_ADDRESSES) has the proxy's address, not its own: SPF is not checked for it, and
// DMARC rests on DKIM alone, its failure not acted on.
import { isIP } from 'node:net'
import { authenticate, type AuthenticateResult, type DmarcResult, type Resolver } from 'mailauth'
import { spf } from 'mailauth/lib/spf/index.js'
import { dmarc as verifyDmarc } from 'mailauth/lib/dmarc/index.js'
import { claimsAuthservId, type AuthCheck, type FilterEnvelope } from '@facteur/filter-client'
import { parseHeaderBlock } from '@facteur/reception'
import { resolverFor } from '@facteur/config'
import { withTimeout } from './timeout.js'

export type AuthOutcome = {
  check: AuthCheck
  /** The Authentication-Results field (CRLF-terminated), or '' when nothing was checked. */
  header: string
  /** DMARC failed and the domain asks for this (`pct` applied). */
  dmarcPolicy?: 'reject' | 'quarantine'
}

export type Authenticator = (message: Buffer, envelope: FilterEnvelope) => Promise<AuthOutcome>

export function authenticator(opts: { hostname: string; dnsServers: readonly string[]; timeoutMs: number }): Authenticator {
  let resolve: Resolver | undefined
  if (opts.dnsServers.length) {
    const resolver = resolverFor(opts.dnsServers)
    resolve = (name, rrtype) => resolver.resolve(name, rrtype)
  }
  const mta = opts.hostname

  return async (message, envelope) => {
    const forged = countForged(message, mta)
    // Mail submitted by an authenticated user is ours: no SPF/DKIM/DMARC verdict on it.
    if (envelope.direction === 'outbound' || envelope.user) return { check: { status: 'skipped', reason: 'outbound', forged }, header: '' }
    try {
      return await withTimeout(check(message, envelope, forged), opts.timeoutMs, 'authentication')
    } catch (err) {
      // DNS did not answer in time (our resolver hangs): the message goes on like one whose
      // lookups failed at once, labelled temperror, never as if it had not been checked at all.
      const detail = (err as Error).message
      return { check: { status: 'error', detail, forged }, header: temperrorHeader(message, envelope, detail) }
    }
  }

  /**
   * RFC 8601 §2.7: temperror for each method that could not finish (a DKIM signature only if
   * there is one: RFC 8601 §2.7.1 "none" otherwise), in the form mailauth writes its results.
   */
  function temperrorHeader(message: Buffer, envelope: FilterEnvelope, why: string): string {
    const mailfrom = envelope.sender || `postmaster@${envelope.helo}`
    const comment = `(${mta}: ${why.replace(/[()\\]/g, '')})`
    const signed = /^DKIM-Signature:/im.test(message.subarray(0, headerEnd(message)).toString('latin1'))
    const lines = [
      signed ? `dkim=temperror ${comment}` : 'dkim=none (message not signed)',
      envelope.proxied ? spfNotChecked(mailfrom) : `spf=temperror ${comment} smtp.mailfrom=${mailfrom}`,
      `dmarc=temperror ${comment}`,
    ]
    return `Authentication-Results: ${mta};\r\n ${lines.map(fold).join(';\r\n ')}\r\n`
  }

  /** The SPF result of a proxied client: RFC 8601 §2.7.2 none, no identity the session could check. */
  function spfNotChecked(mailfrom: string): string {
    return `spf=none (${mta}: not checked, the client's address is hidden by a proxy) smtp.mailfrom=${mailfrom}`
  }

  async function check(message: Buffer, envelope: FilterEnvelope, forged: number): Promise<AuthOutcome> {
    const helo = envelope.helo
    const proxied = envelope.proxied === true
    const result = await authenticate(message, {
      ip: envelope.ip,
      helo,
      sender: envelope.sender,
      mta,
      resolver: resolve,
      disableBimi: true,
      // Behind the proxy mailauth's SPF judged the gateway: DMARC must not count it (below).
      disableDmarc: proxied,
    })
    // RFC 7208 §2.3: HELO is checked on its own when it is a domain name and MAIL FROM is not
    // null (for the null sender mailauth already checks postmaster@HELO as MAIL FROM).
    const heloDomain = !proxied && envelope.sender !== '' && /^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(helo) && !isIP(helo)
    const heloSpf = heloDomain ? await spf({ sender: `postmaster@${helo}`, ip: envelope.ip, helo, mta, resolver: resolve }) : undefined
    const spfResult = proxied ? false : result.spf
    const dmarc = proxied ? await dkimOnlyDmarc(result) : result.dmarc
    // RFC 7489 §4.2: DMARC passes on aligned SPF or DKIM. Without SPF a failure is not one: none.
    const undecided = proxied && dmarc && dmarc.status.result === 'fail'

    const lines: string[] = []
    for (const d of result.dkim.results ?? []) lines.push(d.info)
    if (proxied) lines.push(spfNotChecked(envelope.sender || `postmaster@${helo}`))
    if (spfResult) lines.push(spfResult.info)
    if (heloSpf) lines.push(`spf=${heloSpf.status.result} smtp.helo=${helo}`)
    if (result.arc && result.arc.info) lines.push(result.arc.info)
    if (undecided)
      lines.push(`dmarc=none (${mta}: not evaluated, SPF not checked and no aligned DKIM signature) header.from=${dmarc.domain ?? ''}`)
    else if (dmarc) lines.push(dmarc.info)
    const header = `Authentication-Results: ${mta};\r\n ${lines.map(fold).join(';\r\n ')}\r\n`

    let dmarcPolicy: AuthOutcome['dmarcPolicy']
    if (!undecided && dmarc && dmarc.status.result === 'fail' && (dmarc.policy === 'reject' || dmarc.policy === 'quarantine')) {
      // RFC 7489 §6.6.4: pct= applies the policy to that share of failing messages only.
      const pct = Number((dmarc as { pct?: number }).pct ?? 100)
      if (!(pct < 100) || Math.random() * 100 < pct) dmarcPolicy = dmarc.policy
    }
    return {
      check: {
        status: 'checked',
        spf: spfResult ? spfResult.status.result : 'none',
        ...(heloSpf ? { spfHelo: heloSpf.status.result } : {}),
        dkim: (result.dkim.results ?? []).filter((d) => d.signingDomain).map((d) => ({ domain: d.signingDomain, result: d.status.result })),
        dmarc: dmarc
          ? {
              result: undecided ? 'none' : dmarc.status.result,
              ...(dmarc.policy ? { policy: dmarc.policy } : {}),
              ...(dmarc.domain ? { domain: dmarc.domain } : {}),
            }
          : { result: 'none' },
        arc: result.arc ? result.arc.status.result : 'none',
        forged,
        ...(proxied ? { proxied: true as const } : {}),
      },
      header,
      dmarcPolicy,
    }
  }

  /** DMARC as mailauth's authenticate() evaluates it, with no SPF-authenticated domain. */
  async function dkimOnlyDmarc(result: AuthenticateResult): Promise<DmarcResult> {
    if (!result.dkim.headerFrom) return false
    return verifyDmarc({
      headerFrom: result.dkim.headerFrom,
      spfDomains: [],
      dkimDomains: (result.dkim.results ?? [])
        .filter((d) => d.status.result === 'pass')
        .map((d) => ({ id: d.id, domain: d.signingDomain, aligned: d.status.aligned, underSized: d.status.underSized })),
      arcResult: result.arc,
      resolver: resolve,
    })
  }
}

/** Where the header block ends (after its last CRLF), or the message's length when it has no body. */
function headerEnd(message: Buffer): number {
  const end = message.indexOf('\r\n\r\n')
  return end < 0 ? message.length : end + 2
}

/** Authentication-Results fields in the message's header block that claim `ourId`. */
export function countForged(message: Buffer, ourId: string): number {
  const head = message.subarray(0, headerEnd(message)).toString('latin1')
  return parseHeaderBlock(head).filter((f) => claimsAuthservId(f.name, f.raw, ourId)).length
}

/** mailauth's result lines may be long; RFC 5322 §2.1.1 asks for lines under 78 characters where possible. */
function fold(line: string): string {
  const words = line.replace(/\s+/g, ' ').trim().split(' ')
  const out: string[] = []
  let current = ''
  for (const w of words) {
    if (current && current.length + 1 + w.length > 76) {
      out.push(current)
      current = w
    } else current = current ? `${current} ${w}` : w
  }
  if (current) out.push(current)
  return out.join('\r\n\t')
}
