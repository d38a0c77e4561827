// The submission service's settings: its listeners (RFC 6409 on SUBMISSION_PORT with STARTTLS,
// RFC 8314 implicit TLS on SUBMISSIONS_PORT, an optional alternate port), the brute-force
// protection of AUTH, and the per-user sending limits.
import { ConfigError, type EnvReader } from './env.js'

export type SubmissionConfig = Readonly<{
  listen: string
  /** STARTTLS required before AUTH and MAIL (RFC 6409 §4.1, RFC 3207). */
  port: number
  /** Implicit TLS (RFC 8314 §3.3). */
  securePort: number
  /** Off (null) unless SUBMISSION_ALT_PORT is set; for networks that block 587. */
  alt: Readonly<{ port: number; tls: 'implicit' | 'starttls' }> | null
  healthPort: number
  /**
   * SUBMISSION_HIDE_CLIENT: the Received: field of submitted mail names neither the client's
   * address nor its EHLO name, and X-Originating-IP is removed (a user's home address stays home).
   */
  hideClient: boolean
  auth: Readonly<{
    /** Failed AUTHs from one client address within banWindowMs that ban it for banTimeMs. */
    banFailures: number
    banWindowMs: number
    banTimeMs: number
    /** The delay of an account's AUTH replies after one failure; doubles per failure up to delayMaxMs. */
    delayMs: number
    delayMaxMs: number
  }>
  limits: Readonly<{
    /** Messages one user may submit in any hour; 0 turns the limit off. */
    messagesPerHour: number
    maxRecipients: number
  }>
}>

export function loadSubmissionConfig(r: EnvReader): SubmissionConfig {
  const port = r.port('SUBMISSION_PORT', 587)
  const securePort = r.port('SUBMISSIONS_PORT', 465)
  const altPort = r.optional('SUBMISSION_ALT_PORT') === undefined ? null : r.port('SUBMISSION_ALT_PORT', 0)
  const healthPort = r.port('SUBMISSION_HEALTH_PORT', 8587)
  const named: [string, number | null][] = [
    ['SUBMISSION_PORT', port],
    ['SUBMISSIONS_PORT', securePort],
    ['SUBMISSION_ALT_PORT', altPort],
    ['SUBMISSION_HEALTH_PORT', healthPort],
  ]
  // Port 0 picks a free port each time, so only fixed ports can collide.
  for (const [i, [name, value]] of named.entries()) {
    const clash = named.slice(0, i).find(([, other]) => value && other === value)
    if (clash) throw new ConfigError(name, String(value), `a port other than ${clash[0]}'s`)
  }

  const delayMs = r.duration('SUBMISSION_AUTH_DELAY', '500ms')
  const delayMaxMs = r.duration('SUBMISSION_AUTH_DELAY_MAX', '8s')
  if (delayMaxMs < delayMs)
    throw new ConfigError(
      'SUBMISSION_AUTH_DELAY_MAX',
      r.raw('SUBMISSION_AUTH_DELAY_MAX'),
      'a duration no shorter than SUBMISSION_AUTH_DELAY',
    )
  // A client waiting longer than a few minutes for an AUTH reply has given up (RFC 5321 §4.5.3.2.7).
  if (delayMaxMs > 60_000)
    throw new ConfigError('SUBMISSION_AUTH_DELAY_MAX', r.raw('SUBMISSION_AUTH_DELAY_MAX'), 'a duration of at most 60s')
  const positive = (name: string, def: string): number => {
    const ms = r.duration(name, def)
    if (ms <= 0) throw new ConfigError(name, r.raw(name), 'a duration longer than 0, like 10m')
    return ms
  }

  return Object.freeze({
    // Default: where the MX listens (SMTP_LISTEN), so one setting keeps a test box on loopback.
    listen: r.string('SUBMISSION_LISTEN', r.string('SMTP_LISTEN', '0.0.0.0')),
    port,
    securePort,
    alt:
      altPort === null
        ? null
        : Object.freeze({ port: altPort, tls: r.oneOf('SUBMISSION_ALT_TLS', ['implicit', 'starttls'] as const, 'implicit') }),
    healthPort,
    hideClient: r.bool('SUBMISSION_HIDE_CLIENT', true),
    auth: Object.freeze({
      banFailures: r.int('SUBMISSION_AUTH_BAN_FAILURES', 10, 1, 10_000),
      banWindowMs: positive('SUBMISSION_AUTH_BAN_WINDOW', '10m'),
      banTimeMs: positive('SUBMISSION_AUTH_BAN_TIME', '30m'),
      delayMs,
      delayMaxMs,
    }),
    limits: Object.freeze({
      messagesPerHour: r.int('SUBMISSION_RATE_MESSAGES', 100, 0, 1_000_000),
      maxRecipients: r.int('SUBMISSION_MAX_RECIPIENTS', 50, 1, 100_000),
    }),
  })
}
