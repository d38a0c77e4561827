// Connections to remote hosts: one nodemailer pooled transport per destination (address, port,
// TLS and credentials), so several messages to one host share a connection and at most
// OUTBOUND_CONCURRENCY_PER_DOMAIN connections are open to it at once. A host that did not
// answer is "down" for a while (like Postfix's dead-host cache): the messages waiting for it
// are deferred at once instead of each waiting out its own timeout, so it cannot stall the queue.
import nodemailer from 'nodemailer'
import { isIP } from 'node:net'
import type { Config } from '@facteur/config'
import type { Hop } from './mx.js'

type Transporter = ReturnType<typeof nodemailer.createTransport>

/** How the connection is secured and who we are to the server. */
export type Session = {
  tls: 'opportunistic' | 'require' | 'implicit' | 'none'
  /** Check the server's certificate against its name (the relay, by default). */
  verify: boolean
  auth?: { user: string; pass: string }
  /** Who asks for TLS on this host, for the reply when it cannot be had (the MTA-STS policy of a domain). */
  requiredBy?: string
}

type Entry = { transport: Transporter; lastUsed: number }

/** How long a host that failed to connect or greet is skipped: not long, it may come back. */
const DOWN_MIN_MS = 1_000
const DOWN_MAX_MS = 5 * 60_000
const IDLE_CLOSE_MS = 60_000

export type Pools = {
  /** The pooled transport for one hop, made on first use. */
  transport(hop: Hop, session: Session): Transporter
  /** A signal that aborts when the hop is marked down (sends waiting for it give up). */
  signal(hop: Hop): AbortSignal
  /** When the hop was marked down and why, if it still is. */
  down(hop: Hop): string | null
  markDown(hop: Hop, why: string): void
  /** Forgets every down mark (`mailctl queue flush`, like Postfix's `postqueue -f`). */
  forgetDown(): void
  close(): void
}

export function createPools(config: Config): Pools {
  const out = config.outbound
  const pools = new Map<string, Entry>()
  const downs = new Map<string, { until: number; why: string }>()
  const aborts = new Map<string, AbortController>()
  const hostKey = (hop: Hop): string => `${hop.address}|${hop.port}`
  const downFor = Math.min(DOWN_MAX_MS, Math.max(DOWN_MIN_MS, config.queue.retryMinMs))

  const sweep = setInterval(() => {
    const now = Date.now()
    for (const [key, e] of pools)
      if (now - e.lastUsed > IDLE_CLOSE_MS) {
        e.transport.close()
        pools.delete(key)
      }
    for (const [key, d] of downs) if (d.until < now) downs.delete(key)
  }, IDLE_CLOSE_MS / 2)
  sweep.unref()

  return {
    transport(hop, session) {
      // The password too: a changed one in relay_passwords takes a new transport (the old one idles out).
      const key = `${hostKey(hop)}|${hop.name}|${session.tls}|${session.verify}|${session.auth?.user ?? ''}|${session.auth?.pass ?? ''}`
      let e = pools.get(key)
      if (!e) {
        const servername = isIP(hop.name) ? undefined : hop.name
        const transport = nodemailer.createTransport({
          pool: true,
          maxConnections: out.concurrencyPerDomain,
          maxMessages: 100,
          // A pooled connection the server closed between two messages: send once more, on a new one.
          maxRequeues: 1,
          idleTimeout: 30_000,
          host: hop.address,
          port: hop.port,
          secure: session.tls === 'implicit',
          ignoreTLS: session.tls === 'none',
          requireTLS: session.tls === 'require',
          // RFC 7435 opportunistic security: a STARTTLS that fails is no reason not to deliver.
          opportunisticTLS: session.tls === 'opportunistic',
          servername,
          // RFC 5321 §4.1.1.1: EHLO with our fully qualified name.
          name: config.hostname,
          localAddress: out.bindAddress,
          connectionTimeout: out.connectTimeoutMs,
          greetingTimeout: out.greetingTimeoutMs,
          socketTimeout: out.commandTimeoutMs,
          socketCloseTimeout: 1000,
          tls: { servername, rejectUnauthorized: session.verify, minVersion: 'TLSv1.2' },
          auth: session.auth,
          logger: false,
        })
        e = { transport, lastUsed: Date.now() }
        pools.set(key, e)
      }
      e.lastUsed = Date.now()
      return e.transport
    },
    signal(hop) {
      const key = hostKey(hop)
      let c = aborts.get(key)
      if (!c || c.signal.aborted) aborts.set(key, (c = new AbortController()))
      return c.signal
    },
    down(hop) {
      const d = downs.get(hostKey(hop))
      return d && d.until > Date.now() ? d.why : null
    },
    forgetDown() {
      downs.clear()
    },
    markDown(hop, why) {
      const key = hostKey(hop)
      downs.set(key, { until: Date.now() + downFor, why })
      aborts.get(key)?.abort(new Error(why))
      aborts.delete(key)
      // A pooled transport that failed to connect is not reused: the next attempt starts afresh.
      for (const [k, e] of pools)
        if (k.startsWith(`${key}|`)) {
          e.transport.close()
          pools.delete(k)
        }
    },
    close() {
      clearInterval(sweep)
      for (const e of pools.values()) e.transport.close()
      pools.clear()
    },
  }
}
