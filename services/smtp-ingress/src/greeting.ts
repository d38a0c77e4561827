// The pause before our 220 greeting (SMTP_GREETING_DELAY). smtp-server 3.x hard-codes 100 ms
// between accept and the greeting (SMTPConnection#init), its early-talker check: a client that
// speaks before the greeting (RFC 5321 §3.1: it must wait for it) gets `421 You talk too soon`.
// Those 100 ms cap one client session at 10 connections a second. Spamware that talks first
// does so at once, so a shorter pause still catches it; 0 sends the greeting immediately (the
// check then catches only what arrived with the connection).
//
// The library has no option for it: this replaces `init` on each new connection, before
// SMTPServer#connect calls it, with the library's own body and our delay. Checked against
// smtp-server 3.21 (dist/esm/smtp-connection.js, init()); the ingress tests pin the behaviour.
import type { SMTPServer } from 'smtp-server'
import { onEachConnection, type SmtpConnection } from '@facteur/reception'

export function setGreetingDelay(server: SMTPServer, delayMs: number): void {
  onEachConnection(server, (connection) => {
    connection.init = function (this: SmtpConnection) {
      this._setListeners(() => {
        const max = this._server.options.maxClients
        if (max && this._server.connections.size > max)
          return this.send(421, `${this.name} Too many connected clients, try again in a moment`, false)
        // setImmediate: bytes that arrived during the pause are read (the poll phase runs
        // between timers and immediates) and refused before the connection is marked ready,
        // even when a busy event loop fires the timer late.
        setTimeout(() => setImmediate(() => this.connectionReady()), delayMs).unref()
      })
    }
  })
}
