// The submission service (RFC 6409): the same session on every listener, STARTTLS on
// SUBMISSION_PORT, implicit TLS on SUBMISSIONS_PORT (RFC 8314 §3.3), and the optional alternate
// port. The brute-force guard, the sending limits and the count of each client's sessions
// (SMTP_MAX_CLIENTS_PER_IP) are shared by all of them.
import type { AddressInfo } from 'node:net'
import type { SMTPServer } from 'smtp-server'
import type { Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import type { Spool } from '@facteur/spool'
import type { Accounts, Srs } from '@facteur/accounts'
import { AuthGuard } from './policy/auth-guard.js'
import { SendingLimits } from './policy/rate.js'
import { createSubmissionServer } from './session.js'
import { servesRenewedCertificate, type Certificates } from '@facteur/certs'
import { clientLimitFor, openAccess, sharedAddress, type ReceivingListeners } from '@facteur/reception'

export type ListenerName = 'submission' | 'submissions' | 'alt'
export type Submission = ReceivingListeners<ListenerName>

export async function startSubmission(deps: {
  config: Config
  logger: Logger
  spool: Spool
  accounts: Accounts
  certs: Certificates
  /** SRS_DOMAIN's SRS, which turns bounces to its addresses back into their senders. */
  srs?: () => Promise<Srs | null>
  /** The Docker bridge gateway, when clients of a published port may all appear from it. */
  gateway?: string | null
}): Promise<Submission> {
  const s = deps.config.submission
  // Behind Docker's userland proxy the gateway stands for every client, as SHARED_CLIENT_ADDRESSES
  // do for theirs: AUTH failures from them are counted per account, and their sessions are not
  // counted as one client's.
  const viaGateway = sharedAddress(deps.config, deps.gateway ?? null)
  const ctx = {
    ...deps,
    guard: new AuthGuard(s.auth, { shared: viaGateway }),
    limits: new SendingLimits(s.limits),
    clients: clientLimitFor(deps.config, viaGateway),
    // CONFIG_DIR/sender_access and recipient_access: their refusals (accounts that may not send or receive).
    access: openAccess({ configDir: deps.config.configDir, delimiter: deps.config.recipientDelimiter, logger: deps.logger }),
  }
  const plan: { name: ListenerName; port: number; implicitTls: boolean }[] = [
    { name: 'submission', port: s.port, implicitTls: false },
    { name: 'submissions', port: s.securePort, implicitTls: true },
  ]
  if (s.alt) plan.push({ name: 'alt', port: s.alt.port, implicitTls: s.alt.tls === 'implicit' })

  const started: { name: ListenerName; server: SMTPServer; address: string; port: number }[] = []
  const closeAll = (): Promise<void> =>
    Promise.all(started.map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve())))).then(() => undefined)
  try {
    for (const l of plan) {
      const server = createSubmissionServer(ctx, l)
      // Before TLS no reply can be sent: a connection past the limit is closed, and logged. After
      // createSubmissionServer, so that its guards run only for the connections let in.
      if (l.implicitTls)
        ctx.clients.countFromAccept(server, (ip, refusal) =>
          deps.logger.info('refused', {
            listener: l.name,
            remoteIp: ip,
            cmd: 'CONNECT',
            code: refusal.code,
            enhanced: refusal.status,
            reason: refusal.message,
            closed: 'before the TLS handshake',
          }),
        )
      server.on('error', (err) => deps.logger.warn('smtp error', { listener: l.name, err: err.message }))
      servesRenewedCertificate(server, deps.certs, deps.logger)
      await new Promise<void>((resolve, reject) => {
        server.server.once('error', reject)
        server.listen(l.port, s.listen, () => {
          server.server.off('error', reject)
          resolve()
        })
      })
      const addr = server.server.address() as AddressInfo
      started.push({ name: l.name, server, address: addr.address, port: addr.port })
    }
  } catch (err) {
    await closeAll()
    throw err
  }
  return {
    listeners: started.map(({ name, address, port }) => ({ name, address, port })),
    close: closeAll,
  }
}
