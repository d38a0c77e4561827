// UNKNOWN_SENDER_DOMAIN: a MAIL FROM domain that no mail could be returned to, as Postfix's
// reject_unknown_sender_domain judges it: no MX and no A or AAAA record (450 4.1.8 by default, as
// Postfix's unknown_address_reject_code, or 550 5.1.8), or a null MX (RFC 7505 §4.2: 550 5.7.27).
// A lookup that fails for now defers the sender (451 4.4.3): it will try again.
import { promises as dns } from 'node:dns'
import type { Config } from '@facteur/config'
import { SmtpError } from '@facteur/smtp-error'
import { recentAnswers } from './lookups.js'

type Verdict = 'exists' | 'unknown' | 'null-mx' | 'lookup-failed'

// No such name, no such record, or a name that cannot exist (an empty or 64-octet label).
const ABSENT = new Set<string>([dns.NOTFOUND, dns.NODATA, dns.BADNAME])

/** The check of MAIL FROM's domain, or null when UNKNOWN_SENDER_DOMAIN=accept. */
export function senderDomainCheck(config: Config, resolver: dns.Resolver): ((sender: string) => Promise<SmtpError | null>) | null {
  const mode = config.unknownSenderDomain
  if (mode === 'accept') return null

  const judge = async (domain: string): Promise<Verdict> => {
    try {
      const mx = await resolver.resolveMx(domain)
      // RFC 7505 §3: one MX record whose exchange is the root ('.', which Node gives as '').
      if (mx.length === 1 && (mx[0].exchange === '' || mx[0].exchange === '.')) return 'null-mx'
      if (mx.length) return 'exists'
    } catch (err) {
      if (!ABSENT.has((err as NodeJS.ErrnoException).code ?? '')) return 'lookup-failed'
    }
    // RFC 5321 §5.1: without MX the domain itself (its A or AAAA) takes the mail.
    const addresses = await Promise.allSettled([resolver.resolve4(domain), resolver.resolve6(domain)])
    if (addresses.some((a) => a.status === 'fulfilled' && a.value.length)) return 'exists'
    const failed = addresses.some((a) => a.status === 'rejected' && !ABSENT.has((a.reason as NodeJS.ErrnoException).code ?? ''))
    return failed ? 'lookup-failed' : 'unknown'
  }
  const verdict = recentAnswers(judge, 'lookup-failed' as Verdict)

  return async (sender) => {
    const domain = sender.slice(sender.lastIndexOf('@') + 1).toLowerCase()
    // The null reverse-path, an address literal and our own domains are not looked up.
    if (!sender || !domain || domain.startsWith('[') || config.localDomains.includes(domain)) return null
    switch (await verdict(domain)) {
      case 'exists':
        return null
      case 'null-mx':
        return new SmtpError(550, '7.27', `Sender address rejected: ${domain} does not accept mail (null MX)`)
      case 'unknown':
        return mode === 'reject'
          ? new SmtpError(550, '1.8', `Sender address rejected: Domain ${domain} not found`)
          : new SmtpError(450, '1.8', `Sender address rejected: Domain ${domain} not found`)
      case 'lookup-failed':
        return new SmtpError(451, '4.3', `Sender address rejected: cannot look up ${domain} for now, try again later`)
    }
  }
}
