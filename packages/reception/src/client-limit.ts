// Connections per client (SMTP_MAX_CLIENTS_PER_IP), on every receiving listener: Postfix's
// smtpd_client_connection_count_limit, which anvil(8) counts. Without it one address can hold
// every slot under SMTP_MAX_CLIENTS (each for up to SMTP_TIMEOUT, then connect again), and nobody
// else gets mail in. TRUSTED_NETWORKS are not counted (Postfix's
// smtpd_client_event_limit_exceptions defaults to $mynetworks).
import { isIP, type Socket } from 'node:net'
import type { SMTPServer, SMTPServerSession } from 'smtp-server'
import { SmtpError } from '@facteur/smtp-error'
import { inNetworks, type Config } from '@facteur/config'

export class ClientLimit {
  private readonly open = new Map<string, number>()
  /** Session id -> the key it was counted under. */
  private readonly counted = new Map<string, string>()
  /** Connections counted at accept whose session has not begun (an implicit-TLS handshake), as `key port`. */
  private readonly accepted = new Set<string>()

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

  /**
   * Counts the session's client (call from onConnect); the error to refuse it with past the limit.
   * A connection already counted at accept (countFromAccept) is taken over, not counted again.
   */
  admit(session: Pick<SMTPServerSession, 'id' | 'remoteAddress' | 'remotePort'>): SmtpError | null {
    if (this.max === 0 || this.exempt(session.remoteAddress)) return null
    const key = clientKey(session.remoteAddress)
    if (this.accepted.delete(`${key} ${session.remotePort}`)) {
      this.counted.set(session.id, key)
      return null
    }
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
    this.down(key)
  }

  /**
   * Counts an implicit-TLS listener's connections from the TCP accept, not from onConnect after
   * the handshake: otherwise one address could hold every place before the session
   * (SMTP_MAX_CLIENTS, each up to the handshake's deadline) while never being counted. Postfix's
   * anvil counts at accept too. Past the limit the connection is closed at once: before TLS there
   * is no way to send a 421. For listeners that take no PROXY header (the real client is the peer).
   */
  countFromAccept(server: SMTPServer, onRefused: (ip: string, refusal: SmtpError) => void): void {
    const tcp = server.server
    // Every handler the server has by now (smtp-server's own, guardListener's deadline before it)
    // runs only for the connections let in: smtp-server would wrap a closed socket in TLS, which
    // brings Node down (SIGSEGV). Install this after them.
    const handlers = tcp.listeners('connection') as ((socket: Socket) => void)[]
    tcp.removeAllListeners('connection')
    const accept = (socket: Socket): void => {
      for (const handler of handlers) handler.call(tcp, socket)
    }
    tcp.on('connection', (socket: Socket) => {
      const ip = socket.remoteAddress ?? ''
      if (this.max === 0 || this.exempt(ip)) return accept(socket)
      const key = clientKey(ip)
      const n = this.open.get(key) ?? 0
      if (n >= this.max) {
        socket.on('error', () => undefined)
        socket.destroy()
        return onRefused(ip, this.refusal)
      }
      this.open.set(key, n + 1)
      const early = `${key} ${socket.remotePort}`
      this.accepted.add(early)
      // Closed before its session began (a handshake that failed or never ended): counted down
      // here; once the session has begun, by release() from onClose.
      socket.once('close', () => {
        if (this.accepted.delete(early)) this.down(key)
      })
      accept(socket)
    })
  }

  private down(key: string): void {
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
 * A listener's SMTP_MAX_CLIENTS_PER_IP: TRUSTED_NETWORKS are not counted, nor the addresses that
 * stand for many clients (`shared`: the Docker bridge gateway, SHARED_CLIENT_ADDRESSES: sharedAddress).
 */
export function clientLimitFor(config: Config, shared: (ip: string) => boolean): ClientLimit {
  return new ClientLimit(config.smtp.maxClientsPerIp, {
    hostname: config.hostname,
    exempt: (ip) => inNetworks(config.trustedNetworks, ip) || shared(ip),
  })
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
