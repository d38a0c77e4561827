// Connections per client (SMTP_MAX_CLIENTS_PER_IP), on every receiving listener: Postfix's
// smtpd_client_connection_count_limit, which anvil(8) counts. Without it one address can hold
// every slot under SMTP_MAX_CLIENTS (each for up to SMTP_TIMEOUT, then connect again), and nobody
// else gets mail in. TRUSTED_NETWORKS are not counted (Postfix's
// smtpd_client_event_limit_exceptions defaults to $mynetworks).
import { isIP } from 'node:net'
import type { SMTPServerSession } from 'smtp-server'
import { SmtpError } from '@facteur/smtp-error'

export class ClientLimit {
  private readonly open = new Map<string, number>()
  /** Session id -> the key it was counted under. */
  private readonly counted = new Map<string, string>()

  /** RFC 5321 §3.8, §4.2.3: 421 names our host and closes; RFC 3463 4.7.0, a policy refusal. */
  private readonly refusal: SmtpError
  private readonly exempt: (ip: string) => boolean

  constructor(
    /** 0: no limit. */
    private readonly max: number,
    opts: { hostname: string; exempt?: (ip: string) => boolean },
  ) {
    this.refusal = new SmtpError(421, '7.0', `${opts.hostname} Too many connections from your address, try again later`)
    this.exempt = opts.exempt ?? (() => false)
  }

  /** Counts the session's client (call from onConnect); the error to refuse it with past the limit. */
  admit(session: Pick<SMTPServerSession, 'id' | 'remoteAddress'>): SmtpError | null {
    if (this.max === 0 || this.exempt(session.remoteAddress)) return null
    const key = clientKey(session.remoteAddress)
    const n = this.open.get(key) ?? 0
    if (n >= this.max) return this.refusal
    this.open.set(key, n + 1)
    this.counted.set(session.id, key)
    return null
  }

  /** The session has ended (call from onClose): its client's count goes down, once. */
  release(session: Pick<SMTPServerSession, 'id'>): void {
    const key = this.counted.get(session.id)
    if (key === undefined) return
    this.counted.delete(session.id)
    const n = (this.open.get(key) ?? 1) - 1
    if (n > 0) this.open.set(key, n)
    else this.open.delete(key)
  }

  /** Sessions counted for the address's key now. */
  connections(ip: string): number {
    return this.open.get(clientKey(ip)) ?? 0
  }
}

/**
 * Who a per-client limit applies to (SMTP_MAX_CLIENTS_PER_IP, an AUTH ban): an IPv4 address, or
 * the /64 network of an IPv6 address (one subscriber usually holds a whole /64, RFC 6177 §2, and
 * could otherwise walk through its addresses).
 */
export function clientKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (mapped) return mapped[1]
  const addr = ip.replace(/%.*$/, '')
  if (isIP(addr) !== 6) return addr
  const [head, tail = ''] = addr.toLowerCase().split('::')
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])))
  const left = groups(head)
  const right = groups(tail)
  const full = addr.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left
  return `${full
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`
}
