// Deadlines for slow clients. smtp-server's socketTimeout counts silence only: a client that
// trickles a byte a second keeps its session, and a slot under SMTP_MAX_CLIENTS, forever. Like
// Postfix's smtpd_per_record_deadline and smtpd_min_data_rate, a deadline here runs from each
// reply of ours: the client's next command line (or the TLS handshake after STARTTLS) must be
// complete within SMTP_TIMEOUT, and the message after 354 within SMTP_TIMEOUT plus one second per
// SMTP_MIN_DATA_RATE bytes received. The clock stops while the client waits for us (a handler, the
// content filter). Past the deadline: `421 4.4.2 <host> Error: timeout exceeded`, and the
// connection is closed (RFC 5321 §4.5.3.2 gives the server's timeouts; §3.8: 421 before closing).
import type { SmtpConnection } from './smtp-connection.js'

export type DeadlineLimits = { timeoutMs: number; minDataRate: number }

/** What the service logs when it closes a session for its deadline. */
export type DeadlineExceeded = { phase: 'command' | 'data'; elapsedMs: number; bytes: number }

export function enforceDeadline(
  connection: SmtpConnection,
  limits: DeadlineLimits,
  onExceeded: (what: DeadlineExceeded) => void = () => undefined,
): void {
  let since = Date.now()
  let timer: NodeJS.Timeout | undefined
  const arm = (ms: number): void => {
    clearTimeout(timer)
    timer = setTimeout(check, Math.max(1, ms)).unref()
  }
  // The client waits for us: a handler has not called back, or the message is in and not decided on yet.
  const waitingForUs = (): boolean =>
    connection._handlerPending || Boolean(connection._dataStream && connection._parser && !connection._parser._dataMode)

  function check(): void {
    if (connection._closed || connection._closing) return
    if (waitingForUs()) {
      since = Date.now()
      return arm(limits.timeoutMs)
    }
    const inData = Boolean(connection._dataStream && connection._parser?._dataMode)
    const bytes = inData ? (connection._parser?.dataBytes ?? 0) : 0
    const elapsed = Date.now() - since
    // Postfix smtpd_min_data_rate: each byte of the message extends the deadline by 1/rate seconds.
    const allowed = limits.timeoutMs + (bytes * 1000) / limits.minDataRate
    if (elapsed < allowed) return arm(allowed - elapsed)
    onExceeded({ phase: inData ? 'data' : 'command', elapsedMs: elapsed, bytes })
    connection.send(421, `4.4.2 ${connection.name} Error: timeout exceeded`)
  }

  // Each reply (the greeting, 354, a 334 challenge, 220 before TLS ...) starts the client's turn.
  const send = connection.send.bind(connection)
  connection.send = (code, data, context) => {
    send(code, data, context)
    since = Date.now()
    if (!connection._closing && !connection._closed) arm(limits.timeoutMs)
  }
  const onClose = connection._onClose.bind(connection)
  connection._onClose = () => {
    clearTimeout(timer)
    onClose()
  }
  arm(limits.timeoutMs)
}
