// After QUIT the server closes the channel (RFC 5321 §4.1.1.10). smtp-server half-closes it and
// reads on until the client's FIN; a client that closes without reading the 221 (Postfix's
// smtp-source, many bulk senders) resets the connection instead, and each reset costs an error
// object whose stack Node formats (about 0.1 ms of the ingress's 3 ms a message, one connection
// per message). Once the 221 is with the kernel, the descriptor is closed at once, as Postfix's
// smtpd does: the kernel still sends the reply, then the FIN. TLS sessions keep smtp-server's
// close (their close_notify goes through the TLS socket).
import type { SmtpConnection } from './smtp-connection.js'

export function closeAfterQuit(connection: SmtpConnection): void {
  const quit = connection.handler_QUIT
  connection.handler_QUIT = (command, callback) => {
    quit.call(connection, command, callback)
    const socket = connection._socket
    if (!connection.secure && !socket.destroyed && socket.writableLength === 0) socket.destroy()
  }
}
