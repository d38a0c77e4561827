// What every receiving listener (the MX on SMTP_PORT, submission on 587, 465 and the alternate
// port) sets up alike around smtp-server: the options they share, and the guards each connection
// gets: one enhanced status code on every reply (replies.ts) and deadlines against slow clients
// (deadline.ts), also before the session starts (the PROXY header, an implicit TLS handshake);
// limits on a session's errors (error-limit.ts); and DATA read with a native search for dot-led
// lines (data-scan.ts).
import type { Socket } from 'node:net'
import type { SMTPServer, SMTPServerOptions } from 'smtp-server'
import type { Config } from '@facteur/config'
import type { Certificates } from '@facteur/certs'
import { onEachConnection } from './smtp-connection.js'
import { enhancedReplies } from './replies.js'
import { enforceDeadline, type DeadlineExceeded, type DeadlineLimits } from './deadline.js'
import { installDataScan } from './data-scan.js'
import { limitErrors, type ErrorLimits } from './error-limit.js'
import { closeAfterQuit } from './quit.js'

export type SessionTimeout = {
  cid?: string
  remoteIp?: string
  phase: DeadlineExceeded['phase'] | 'handshake'
  elapsedMs: number
  bytes: number
}

/** smtp-server options both services set alike; each adds its own (banner, AUTH, TLS mode, handlers). */
export function listenerOptions(config: Config, certs: Certificates): SMTPServerOptions {
  const tlsNow = certs.current()
  return {
    name: config.hostname,
    key: tlsNow.key,
    cert: tlsNow.cert,
    SNICallback: (name, cb) => certs.SNICallback(name, cb),
    // RFC 8996: TLS 1.0 and 1.1 are retired.
    minVersion: 'TLSv1.2',
    size: config.smtp.sizeLimit,
    hideSMTPUTF8: true,
    // RFC 2034: an enhanced status code on every reply, ENHANCEDSTATUSCODES in the EHLO reply (replies.ts).
    hideENHANCEDSTATUSCODES: false,
    maxClients: config.smtp.maxClients,
    // The deadline (deadline.ts) bounds silence and trickling alike; smtp-server's idle timeout is a backstop.
    socketTimeout: 2 * config.smtp.timeoutMs,
    closeTimeout: 30_000,
    disableReverseLookup: true,
    logger: false,
  }
}

/** What the service logs when it closes a session at SMTP_HARD_ERROR_LIMIT. */
export type TooManyErrors = { cid: string; remoteIp: string; errors: number }

/**
 * Installs the reply, deadline and error guards on every connection of `server` (error limits left
 * out: none); `onTimeout` and `onTooManyErrors` log a session closed by them.
 */
export function guardListener(
  server: SMTPServer,
  limits: DeadlineLimits & Partial<ErrorLimits>,
  onTimeout: (t: SessionTimeout) => void,
  onTooManyErrors: (e: TooManyErrors) => void = () => undefined,
): void {
  const errorLimits: ErrorLimits = {
    softErrorLimit: limits.softErrorLimit ?? 0,
    hardErrorLimit: limits.hardErrorLimit ?? 0,
    errorSleepMs: limits.errorSleepMs ?? 0,
  }
  installDataScan()
  // Before the session: smtp-server times only the silence of a socket that has not sent its PROXY
  // header or finished its implicit TLS handshake; a byte a second would keep it. One deadline here.
  // During an implicit TLS handshake the TLS socket is destroyed, not the accepted one under it
  // (that tears the TLS wrap down from below); smtp-server keeps it in `_pendingSockets`.
  const pending = (server as unknown as { _pendingSockets: Map<Socket, Socket> })._pendingSockets
  const before = new WeakMap<Socket, NodeJS.Timeout>()
  // Prepended: armed before smtp-server's own listener can hand the socket to its session.
  server.server.prependListener('connection', (socket: Socket) => {
    const opened = Date.now()
    const timer = setTimeout(() => {
      const live = pending.get(socket) ?? socket
      if (live.destroyed) return
      onTimeout({ remoteIp: socket.remoteAddress, phase: 'handshake', elapsedMs: Date.now() - opened, bytes: socket.bytesRead })
      live.destroy()
    }, limits.timeoutMs).unref()
    before.set(socket, timer)
  })
  onEachConnection(server, (connection) => {
    // Implicit TLS: the session's socket is the TLS socket over the accepted one (node's `_parent`).
    const accepted = (connection._socket as Socket & { _parent?: Socket })._parent ?? connection._socket
    clearTimeout(before.get(accepted))
    before.delete(accepted)
    enhancedReplies(connection)
    closeAfterQuit(connection)
    enforceDeadline(connection, limits, (what) => onTimeout({ cid: connection.id, remoteIp: connection.remoteAddress, ...what }))
    // Last, so that it sees smtp-server's own reply contexts (the 250 that takes a message).
    limitErrors(connection, errorLimits, (errors) => onTooManyErrors({ cid: connection.id, remoteIp: connection.remoteAddress, errors }))
  })
}
