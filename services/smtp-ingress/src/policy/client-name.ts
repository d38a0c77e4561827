// SMTP_CLIENT_PTR_CHECK: the client's address has a name in DNS, as Postfix's
// reject_unknown_reverse_client_hostname (`reverse`: a PTR record) and
// reject_unknown_client_hostname (`forward`: a PTR name whose A/AAAA records give the address
// back, "forward-confirmed"). Mail servers have one; a home machine of a botnet most often not.
// Refused at RCPT with Postfix's unknown_client_reject_code 450 and RFC 7372's 4.7.25 (reverse DNS
// validation failed): a sender with a DNS problem of its own is delayed, not lost. A lookup that
// fails for now answers the same (Postfix does too). Asked at connect, answered at RCPT.
import { promises as dns } from 'node:dns'
import { reverseName, type Config } from '@facteur/config'
import { SmtpError } from '@facteur/smtp-error'
import { recentAnswers } from './lookups.js'

export type ClientNameMode = 'off' | 'reverse' | 'forward'

type Verdict = 'named' | 'no-ptr' | 'not-confirmed' | 'lookup-failed'

/** The client's check, or null when SMTP_CLIENT_PTR_CHECK=off. */
export function clientNameCheck(config: Config, resolver: dns.Resolver): ((ip: string) => Promise<SmtpError | null>) | null {
  const mode = config.clientPtrCheck
  if (mode === 'off') return null
  const judge = async (ip: string): Promise<Verdict> => {
    let names: string[]
    try {
      // A PTR query, not resolver.reverse(): c-ares answers that from /etc/hosts first.
      names = await resolver.resolvePtr(reverseName(ip))
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      return code === dns.NOTFOUND || code === dns.NODATA ? 'no-ptr' : 'lookup-failed'
    }
    if (!names.length) return 'no-ptr'
    if (mode === 'reverse') return 'named'
    // Postfix looks at up to 10 names; one whose addresses include the client's is enough.
    for (const name of names.slice(0, 10)) {
      const found = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)])
      if (found.some((f) => f.status === 'fulfilled' && f.value.some((a) => sameAddress(a, ip)))) return 'named'
    }
    return 'not-confirmed'
  }
  const verdict = recentAnswers(judge, 'lookup-failed' as Verdict)
  return async (ip) => {
    switch (await verdict(ip)) {
      case 'named':
        return null
      case 'no-ptr':
      case 'lookup-failed':
        return new SmtpError(450, '7.25', `Client host rejected: cannot find your reverse hostname, [${ip}]`)
      case 'not-confirmed':
        return new SmtpError(450, '7.25', `Client host rejected: cannot find your hostname, [${ip}]`)
    }
  }
}

/** `::ffff:192.0.2.1` is 192.0.2.1. */
function sameAddress(a: string, b: string): boolean {
  const plain = (x: string): string => x.toLowerCase().replace(/^::ffff:(?=\d+\.)/, '')
  return plain(a) === plain(b)
}
