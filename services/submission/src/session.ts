// One submission listener (RFC 6409): smtp-server speaks SMTP, this file holds each session's
// mail transaction and asks policy/ at every command. AUTH only under TLS, MAIL only after AUTH,
// and 250 only once the message is committed to the spool.
import { SMTPServer, type SMTPServerSession } from 'smtp-server'
import type { Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import type { Spool, RecipientState } from '@facteur/spool'
import type { Accounts } from '@facteur/accounts'
import type { Certificates } from '@facteur/certs'
import { SmtpError, toSmtpError } from '@facteur/smtp-error'
import { receiveMessage, receivedHeader } from '@facteur/reception'
import { claimsAuthservId, filterInspector, type FilterOutcome } from '@facteur/filter-client'
import { authenticate, type AuthOutcome } from './policy/auth.js'
import type { AuthGuard } from './policy/auth-guard.js'
import { checkFromHeader, ownsAddress, SENDER_NOT_OWNED } from './policy/sender.js'
import { RATE_LIMITED, TOO_MANY_RECIPIENTS, type SendingLimits } from './policy/rate.js'
import { decideRecipient } from './policy/rcpt.js'
import { submissionHeaderEdit } from './headers.js'
import { envelopeDsn, notifyOf, originalRecipient } from './dsn.js'

export type SubmissionContext = {
  config: Config
  logger: Logger
  spool: Spool
  accounts: Accounts
  certs: Certificates
  guard: AuthGuard
  limits: SendingLimits
}

/** What one mail transaction (MAIL .. DATA) has gathered. */
type Transaction = { user: string; recipients: Map<string, RecipientState>; rcptCount: number; started: number }

export function createSubmissionServer(ctx: SubmissionContext, listener: { name: string; implicitTls: boolean }): SMTPServer {
  const { config, logger, spool, accounts, certs, guard, limits } = ctx
  const txns = new Map<string, Transaction>()
  const tlsNow = certs.current()
  const ownedBy = (user: string) => (address: string) => ownsAddress(address, user, { accounts, localDomains: config.localDomains })

  const refuse = (session: SMTPServerSession, cmd: string, err: SmtpError, extra: Record<string, unknown> = {}): Error => {
    logger.info('refused', {
      cid: session.id,
      listener: listener.name,
      remoteIp: session.remoteAddress,
      user: userOf(session),
      cmd,
      code: err.code,
      enhanced: err.status,
      reason: err.message,
      ...extra,
    })
    if (err.cause) logger.warn('cause', { cid: session.id, err: String((err.cause as Error)?.message ?? err.cause) })
    return err.toServerError()
  }

  return new SMTPServer({
    name: config.hostname,
    banner: 'Facteur submission',
    secure: listener.implicitTls,
    key: tlsNow.key,
    cert: tlsNow.cert,
    SNICallback: (name, cb) => certs.SNICallback(name, cb),
    // RFC 8996: TLS 1.0 and 1.1 are retired.
    minVersion: 'TLSv1.2',
    authMethods: ['PLAIN', 'LOGIN'],
    // allowInsecureAuth stays unset: RFC 4954 §4, no credentials over a clear channel.
    authRequiredMessage: '5.7.0 Authentication required',
    size: config.smtp.sizeLimit,
    hideSMTPUTF8: true,
    // RFC 3461: NOTIFY, RET, ENVID and ORCPT are kept in the envelope for delivery's DSNs.
    hideDSN: false,
    maxClients: config.smtp.maxClients,
    socketTimeout: config.smtp.timeoutMs,
    closeTimeout: 30_000,
    disableReverseLookup: true,
    logger: false,

    onConnect(session, cb) {
      // RFC 3207 §4.2, RFC 4954 §4: AUTH is neither offered nor accepted before TLS. smtp-server
      // would list it in the EHLO reply on a clear channel, so it is off until onSecure.
      if (!session.secure) session.disabledCommands = ['AUTH']
      logger.debug('connect', { cid: session.id, listener: listener.name, remoteIp: session.remoteAddress })
      cb()
    },

    onSecure(_socket, session, cb) {
      session.disabledCommands = undefined
      cb()
    },

    onAuth(auth, session, cb) {
      if (auth.method !== 'PLAIN' && auth.method !== 'LOGIN')
        return cb(refuse(session, 'AUTH', new SmtpError(504, '5.4', 'Unrecognized authentication type')))
      let failure: AuthOutcome | undefined
      authenticate(
        {
          username: auth.username ?? '',
          // smtp-server falls back to the authzid when the authcid is empty; only both together ask for a proxy.
          authzid: auth.method === 'PLAIN' && auth.authcid ? auth.authzid : undefined,
          password: auth.password ?? '',
          ip: session.remoteAddress,
        },
        { accounts, guard, mailDomain: config.mailDomain, onFailure: (o) => (failure = o) },
      ).then(
        (user) => {
          logger.info('authenticated', {
            cid: session.id,
            listener: listener.name,
            remoteIp: session.remoteAddress,
            user,
            method: auth.method,
          })
          cb(null, { user })
        },
        (err: unknown) => {
          const detail = failure && {
            // A name nobody has may be a password typed in the wrong box: it is not logged.
            account: failure.known ? failure.account : undefined,
            banned: failure.banned || undefined,
            delayMs: failure.delayMs || undefined,
          }
          cb(refuse(session, 'AUTH', toSmtpError(err), { method: auth.method, ...detail }))
        },
      )
    },

    onMailFrom(address, session, cb) {
      const user = userOf(session)
      // RFC 3207 §4 and RFC 4954 §6: 530 5.7.0 before TLS, and before AUTH.
      if (!user)
        return cb(
          refuse(
            session,
            'MAIL',
            new SmtpError(530, '7.0', session.secure ? 'Authentication required' : 'Must issue a STARTTLS command first'),
          ),
        )
      accounts
        .refresh()
        .then(() => {
          // The null sender (RFC 8098 §3: read receipts) names nobody; its From: is checked at DATA.
          if (address.address !== '' && !ownedBy(user)(address.address)) throw SENDER_NOT_OWNED
          if (!limits.mayStart(user, Date.now())) throw RATE_LIMITED
        })
        .then(
          () => {
            txns.set(session.id, { user, recipients: new Map(), rcptCount: 0, started: Date.now() })
            cb()
          },
          (err: unknown) => cb(refuse(session, 'MAIL', toSmtpError(err), { sender: address.address })),
        )
    },

    onRcptTo(address, session, cb) {
      const txn = txns.get(session.id)
      if (!txn) return cb(refuse(session, 'RCPT', new SmtpError(503, '5.1', 'Need MAIL command')))
      if (!limits.mayAddRecipient(txn.rcptCount)) return cb(refuse(session, 'RCPT', TOO_MANY_RECIPIENTS, { rcpt: address.address }))
      decideRecipient(address.address, { config, accounts }).then(
        (targets) => {
          txn.rcptCount++
          const original = originalRecipient(address)
          const notify = notifyOf(address)
          for (const target of targets) {
            if (txn.recipients.has(target)) continue
            txn.recipients.set(target, { address: target, original, status: 'pending', attempts: 0, ...(notify && { notify }) })
          }
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
      const dsn = envelopeDsn(session.envelope.dsn)
      let filtered: FilterOutcome | undefined
      receiveMessage({
        stream,
        spool,
        limits: config.smtp,
        check: (fields) => checkFromHeader(fields, ownedBy(txn.user)),
        edit: {
          ...submissionHeaderEdit({ hostname: config.hostname, user: txn.user }),
          // RFC 8601 §5: Authentication-Results claiming our authserv-id were not written by us.
          drop: (f) => claimsAuthservId(f.name, f.raw, config.hostname),
        },
        // The content filter (direction outbound) sees the stored message before the commit: a
        // refusal is our DATA reply, its headers go in front of the message.
        inspect: filterInspector(config.filter, {
          direction: 'outbound',
          onOutcome: (o) => {
            filtered = o
            if (o.error) logger.warn('filter unavailable', { cid: session.id, err: o.error, failure: config.filter.failure })
          },
        }),
        envelope: (id) => ({
          sender,
          recipients,
          receivedAt: Date.now(),
          nextAttempt: 0,
          client: { ip: session.remoteAddress, helo: session.hostNameAppearsAs ?? '', tls: session.secure, user: txn.user },
          source: 'submission',
          ...(dsn && { dsn }),
          // RFC 3848 ESMTPSA. The user is not named (Postfix's smtpd_sasl_authenticated_header is
          // off by default), nor the recipient: with one, a Bcc'd address would show.
          prepend: receivedHeader({
            helo: session.hostNameAppearsAs ?? '',
            ip: session.remoteAddress,
            hostname: config.hostname,
            queueId: id,
            esmtp: session.openingCommand !== 'HELO',
            tls: session.secure,
            authenticated: true,
          }),
        }),
      }).then(
        ({ envelope }) => {
          limits.record(txn.user, Date.now())
          logger.info('queued', {
            cid: session.id,
            queueId: envelope.id,
            remoteIp: session.remoteAddress,
            user: txn.user,
            sender,
            recipients: recipients.map((r) => r.address),
            size: envelope.size,
            code: 250,
            ...(filtered && { filter: filtered.action }),
            durationMs: Date.now() - txn.started,
          })
          txns.delete(session.id)
          cb(null, `2.0.0 Ok: queued as ${envelope.id}`)
        },
        (err: unknown) => {
          txns.delete(session.id)
          const filter = filtered && { filter: filtered.action }
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
}

function userOf(session: SMTPServerSession): string | undefined {
  return typeof session.user === 'string' ? session.user : undefined
}
