// The parts of smtp-server's per-connection object (SMTPConnection, not in its typings) that the
// reply, deadline and error guards, the close after QUIT and the ingress's greeting delay use, and the
// one place they reach it: every connection as SMTPServer adds it to its `connections` set,
// before `init()` runs.
// Checked against smtp-server 3.21 (dist/esm/smtp-connection.js);
// packages/reception/test/listener-guard.test.ts pins the behaviour.
import type { Socket } from 'node:net'
import type { SMTPServer } from 'smtp-server'

export type SmtpConnection = {
  /** The session id (session.id, `cid` in our logs). */
  id: string
  remoteAddress: string
  /** The server's name for itself (the `name` option): our hostname. */
  name: string
  /** Writes one reply; `context` false means no enhanced status code is added. */
  send(code: number, data: string | string[], context?: string | false): void
  close(): void
  /** True once the session runs over TLS (implicit, or after STARTTLS). */
  secure: boolean
  /** The QUIT command: replies 221 and closes. */
  handler_QUIT(command: Buffer, callback: () => void): void
  /** The current socket: the TLS one once STARTTLS or implicit TLS completed. */
  _socket: Socket
  _closing: boolean
  _closed: boolean
  /** True while the STARTTLS handshake runs. */
  _upgrading: boolean
  /** True while an application handler (onAuth, onMailFrom, onRcptTo ...) has not called back. */
  _handlerPending: boolean
  /** The onData stream while a message is received or decided on, else false or null. */
  _dataStream: unknown
  _parser: { _dataMode: boolean; dataBytes: number } | null
  _onClose(): void
  /** True from the greeting on (set as it is sent): from then on the client may speak. */
  _ready: boolean
  /** Handles one command line; the parser reads the next once `callback` ran. */
  _onCommand(command: Buffer, callback?: () => void): void
  /** Starts the session: sets the socket's listeners, then greets after smtp-server's fixed pause. */
  init(): void
  /** Sends the greeting; from then on the client may speak. */
  connectionReady(): void
  _setListeners(callback: () => void): void
  _server: { options: { maxClients?: number }; connections: Set<unknown> }
}

/** Runs `fn` on every new connection of `server`, before its session starts. */
export function onEachConnection(server: SMTPServer, fn: (connection: SmtpConnection) => void): void {
  const connections = (server as unknown as { connections: Set<SmtpConnection> }).connections
  const add = connections.add.bind(connections)
  connections.add = (connection: SmtpConnection) => {
    fn(connection)
    return add(connection)
  }
}
