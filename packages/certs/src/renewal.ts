// A renewed certificate (certbot renames the new files into place) is served from the next
// connection on, without a restart. certs.SNICallback covers clients that send SNI; smtp-server
// gives every other TLS socket the server's default context, taken synchronously when the
// connection is accepted (implicit TLS) or at STARTTLS. So the files are stat'ed, synchronously,
// in a listener that runs before smtp-server's own, and a changed pair replaces that context.
import fs from 'node:fs'
import type { SMTPServer } from 'smtp-server'
import type { Certificates } from './certs.js'
import type { Logger } from '@facteur/logging'

export function servesRenewedCertificate(server: SMTPServer, certs: Certificates, logger: Logger): void {
  const { certFile, keyFile } = certs.current()
  const stamp = (): string => {
    const c = fs.statSync(certFile)
    const k = fs.statSync(keyFile)
    return `${c.ino}:${c.mtimeMs}:${c.size}:${k.ino}:${k.mtimeMs}:${k.size}`
  }
  let applied = stamp()
  let failed = ''
  server.server.prependListener('connection', () => {
    let now: string
    try {
      now = stamp()
    } catch {
      return // a file is missing for a moment during a renewal: keep serving the old pair
    }
    if (now === applied || now === failed) return
    try {
      // Throws on a key that does not match its certificate (half-way through a renewal).
      server.updateSecureContext({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) })
      applied = now
      logger.info('certificate reloaded', { certFile })
      void certs.reload() // keeps health's view (self-signed or not) in step
    } catch (err) {
      failed = now
      logger.warn('cannot load the renewed certificate, still serving the previous one', { certFile, err: (err as Error).message })
    }
  })
}
