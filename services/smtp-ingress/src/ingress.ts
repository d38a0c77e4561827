// The MX listener (RFC 5321 on SMTP_PORT): accepts mail for our domains (and relays for
// TRUSTED_NETWORKS), refuses everything else in the dialogue, and answers 250 only once the
// message is committed to the spool. The session dispatches; policy/ decides.
import { SMTPServer, type SMTPServerSession } from 'smtp-server'
import type { AddressInfo } from 'node:net'
import type { Config } from '@facteur/config'
import { inNetworks } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import type { Spool } from '@facteur/spool'
import type { Accounts } from '@facteur/accounts'
import { servesRenewedCertificate, type Certificates } from '@facteur/certs'
import { SmtpError, toSmtpError } from '@facteur/smtp-error'
import { receiveMessage, receivedHeader } from '@facteur/reception'
import { claimsAuthservId, filterInspector, type FilterOutcome } from '@facteur/filter-client'
import { decideRecipient, type AcceptedRecipient } from './policy/rcpt.js'
import { checkLoops } from './policy/loops.js'
import { setGreetingDelay } from './greeting.js'

export type Ingress = { port: number; address: string; close(): Promise<void> }

/** What one mail transaction (MAIL .. DATA) has gathered. */
type Transaction = { recipients: Map<string, AcceptedRecipient>; rcptCount: number; started: number }

export async function startIngress(deps: {
  config: Config
  logger: Logger
  spool: Spool
  accounts: Accounts
  certs: Certificates
}): Promise<Ingress> {
  const { config, logger, spool, accounts, certs } = deps
  const txns = new Map<string, Transaction>()
  const tlsNow = certs.current()

  const refuse = (session: SMTPServerSession, cmd: string, err: SmtpError, extra: Record<string, unknown> = {}): Error => {
    logger.info('refused', {
      cid: session.id,
      remoteIp: session.remoteAddress,
      cmd,
      code: err.code,
      enhanced: err.status,
      reason: err.message,
      ...extra,
    })
    if (err.cause) logger.warn('cause', { cid: session.id, err: String((err.cause as Error)?.message ?? err.cause) })
    return err.toServerError()
  }

  const server = new SMTPServer({
    name: config.hostname,
    banner: 'Facteur',
    key: tlsNow.key,
    cert: tlsNow.cert,
    SNICallback: (name, cb) => certs.SNICallback(name, cb),
    minVersion: 'TLSv1.2',
    size: config.smtp.sizeLimit,
    disabledCommands: ['AUTH'],
    authOptional: true,
    hideSMTPUTF8: true,
    maxClients: config.smtp.maxClients,
    socketTimeout: config.smtp.timeoutMs,
    closeTimeout: 30_000,
    disableReverseLookup: true,
    // A front proxy (HAProxy ...) tells the real client address in a PROXY v1 header; only PROXY_TRUSTED peers may.
    useProxy: config.proxy.trusted.length ? [...config.proxy.trusted] : false,
    logger: false,

    onConnect(session, cb) {
      logger.debug('connect', { cid: session.id, remoteIp: session.remoteAddress })
      cb()
    },

    onMailFrom(address, session, cb) {
      txns.set(session.id, { recipients: new Map(), rcptCount: 0, started: Date.now() })
      cb()
    },

    onRcptTo(address, session, cb) {
      const txn = txns.get(session.id)
      if (!txn) return cb(refuse(session, 'RCPT', new SmtpError(503, '5.1', 'Need MAIL command')))
      // RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted; beyond our limit, 452.
      if (txn.rcptCount >= config.smtp.maxRecipients) return cb(refuse(session, 'RCPT', new SmtpError(452, '5.3', 'Too many recipients')))
      const trusted = inNetworks(config.trustedNetworks, session.remoteAddress)
      decideRecipient(address.address, { config, accounts, trusted }).then(
        (accepted) => {
          txn.rcptCount++
          for (const r of accepted) if (!txn.recipients.has(r.address)) txn.recipients.set(r.address, r)
          cb()
        },
        (err: unknown) => cb(refuse(session, 'RCPT', toSmtpError(err), { rcpt: address.address })),
      )
    },

    onData(stream, session, cb) {
      const txn = txns.get(session.id)
      const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : ''
      if (!txn || txn.recipients.size === 0) {
        stream.resume()
        stream.once('end', () => cb(refuse(session, 'DATA', new SmtpError(554, '5.1', 'No valid recipients'))))
        return
      }
      const recipients = [...txn.recipients.values()]
      let filtered: FilterOutcome | undefined
      receiveMessage({
        stream,
        spool,
        limits: config.smtp,
        check: (fields) => checkLoops(fields, [...recipients.map((r) => r.address), ...recipients.map((r) => r.original)]),
        // RFC 8601 §5: Authentication-Results claiming our authserv-id come from outside: forged.
        edit: { drop: (f) => claimsAuthservId(f.name, f.raw, config.hostname) },
        // The content filter sees the stored message before the commit: a refusal is our DATA reply.
        // TRUSTED_NETWORKS clients send our own users' mail: outbound (no SPF/DMARC verdict on it).
        inspect: filterInspector(config.filter, {
          direction: inNetworks(config.trustedNetworks, session.remoteAddress) ? 'outbound' : 'inbound',
          onOutcome: (o) => {
            filtered = o
            if (o.error) logger.warn('filter unavailable', { cid: session.id, err: o.error, failure: config.filter.failure })
          },
        }),
        envelope: (id) => ({
          sender,
          recipients: recipients.map((r) => ({ address: r.address, original: r.original, status: 'pending' as const, attempts: 0 })),
          receivedAt: Date.now(),
          nextAttempt: 0,
          client: { ip: session.remoteAddress, helo: session.hostNameAppearsAs ?? '', tls: session.secure },
          source: 'smtp-ingress',
          prepend: receivedHeader({
            helo: session.hostNameAppearsAs ?? '',
            ip: session.remoteAddress,
            hostname: config.hostname,
            queueId: id,
            esmtp: session.openingCommand !== 'HELO',
            tls: session.secure,
            authenticated: false,
            recipient: recipients.length === 1 ? recipients[0].original : undefined,
          }),
        }),
      }).then(
        ({ envelope }) => {
          logger.info('queued', {
            cid: session.id,
            queueId: envelope.id,
            remoteIp: session.remoteAddress,
            sender,
            recipients: recipients.map((r) => r.address),
            size: envelope.size,
            code: 250,
            ...(filtered ? { filter: filtered.action } : {}),
            durationMs: Date.now() - txn.started,
          })
          txns.delete(session.id)
          cb(null, `2.0.0 Ok: queued as ${envelope.id}`)
        },
        (err: unknown) => {
          txns.delete(session.id)
          const filter = filtered ? { filter: filtered.action } : {}
          cb(
            refuse(session, 'DATA', toSmtpError(err), {
              sender,
              recipients: recipients.map((r) => r.address),
              ...filter,
              durationMs: Date.now() - txn.started,
            }),
          )
        },
      )
    },

    onClose(session) {
      txns.delete(session.id)
    },
  })

  server.on('error', (err) => logger.warn('smtp error', { err: err.message }))
  servesRenewedCertificate(server, certs, logger)
  setGreetingDelay(server, config.smtp.greetingDelayMs)
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject)
    server.listen(config.smtp.port, config.smtp.listen, () => resolve())
  })
  const addr = server.server.address() as AddressInfo
  return {
    port: addr.port,
    address: addr.address,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
