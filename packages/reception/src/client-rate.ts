// Connections a minute per client (SMTP_CONNECTION_RATE_LIMIT): Postfix's
// smtpd_client_connection_rate_limit, which anvil(8) counts per anvil_rate_time_unit (60 s).
// SMTP_MAX_CLIENTS_PER_IP bounds how many sessions one client holds at once; this bounds how fast
// it opens them, so a client cannot make the MX accept, greet and log thousands of short sessions
// a minute (a dictionary attack by connection, a broken client in a loop). Every connection is
// counted, the refused ones too, so a client that keeps hammering stays refused until it slows.
// The same keys as the concurrency limit (an IPv4 address, an IPv6 /64); the same exemptions.
import { SmtpError } from '@facteur/smtp-error'
import { inNetworks, type Config } from '@facteur/config'
import { clientKey } from './client-limit.js'

const WINDOW_MS = 60_000
/** Past this many clients counted at once, windows that ended are dropped at the next connection. */
const SWEEP_AT = 10_000

export class ConnectionRate {
  /** Client key -> its window's start and count. */
  private readonly windows = new Map<string, { start: number; count: number }>()

  constructor(
    /** 0: no limit. */
    private readonly max: number,
    private readonly opts: { hostname: string; exempt: (ip: string) => boolean },
  ) {}

  /** Counts a connection (call from onConnect); the refusal past the limit in this minute. */
  admit(ip: string, now = Date.now()): SmtpError | null {
    if (this.max === 0 || this.opts.exempt(ip)) return null
    const key = clientKey(ip)
    let w = this.windows.get(key)
    if (!w || now - w.start >= WINDOW_MS) {
      if (this.windows.size >= SWEEP_AT) for (const [k, old] of this.windows) if (now - old.start >= WINDOW_MS) this.windows.delete(k)
      w = { start: now, count: 0 }
      this.windows.set(key, w)
    }
    w.count++
    if (w.count <= this.max) return null
    // Postfix: "421 4.7.0 HOST Error: too many connections from IP"; RFC 5321 §3.8, 421 closes.
    return new SmtpError(421, '7.0', `${this.opts.hostname} Error: too many connections from ${ip}, try again later`)
  }
}

/** The MX's SMTP_CONNECTION_RATE_LIMIT: TRUSTED_NETWORKS and shared addresses (the Docker gateway) are not counted. */
export function connectionRateFor(config: Config, shared: (ip: string) => boolean): ConnectionRate {
  return new ConnectionRate(config.smtp.connectionRateLimit, {
    hostname: config.hostname,
    exempt: (ip) => inNetworks(config.trustedNetworks, ip) || shared(ip),
  })
}
