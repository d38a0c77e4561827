// One submission listener (RFC 6409): smtp-server speaks SMTP, this file holds each session's
// mail transaction and asks policy/ at every command. AUTH only under TLS, MAIL only after AUTH,
// and 250 only once the message is committed to the spool.
import { SMTPServer, type SMTPServerSession } from 'smtp-server'
import type { Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import type { Spool } from '@facteur/spool'
import type { Accounts, Srs } from '@facteur/accounts'
import type { Certificates } from '@facteur/certs'
import { SmtpError, toSmtpError } from '@facteur/smtp-error'
import {
  alwaysBcc,
  guardListener,
  listenerOptions,
  mailTransactions,
  type Access,
  type ClientLimit,
  type Transaction,
} from '@facteur/reception'
import { authenticate, type AuthOutcome } from './policy/auth.js'
import type { AuthGuard } from './policy/auth-guard.js'
import { checkFromHeader, ownsAddress, SENDER_NOT_OWNED } from './policy/sender.js'
import { RATE_LIMITED, TOO_MANY_RECIPIENTS, type SendingLimits } from './policy/rate.js'
import { decideRecipient } from './policy/rcpt.js'
import { submissionHeaderEdit } from './headers.js'
import { envelopeDsn, notifyOf, orcptOf, originalRecipient } from './dsn.js'

export type SubmissionContext = {
  config: Config
  logger: Logger
  spool: Spool
  accounts: Accounts
  certs: Certificates
  srs?: () => Promise<Srs | null>
  guard: AuthGuard
  limits: SendingLimits
  clients: ClientLimit
  access: Access
}

/** A submission transaction is the authenticated user's. */
type UserTransaction = Transaction & { user: string }

export function createSubmissionServer(ctx: SubmissionContext, listener: { name: string; implicitTls: boolean }): SMTPServer {
  const { config, logger, spool, accounts, certs, guard, limits, clients, access } = ctx
  const ownedBy = (user: string) => (address: string) => ownsAddress(address, user, { accounts, localDomains: config.localDomains })

  const mail = mailTransactions<UserTransaction>(
    { config, logger, spool, alwaysBcc: alwaysBcc(config, accounts, logger) },
    {
      fields: (session) => ({ listener: listener.name, user: userOf(session) }),
      recipientLimit: (txn) => (limits.mayAddRecipient(txn.rcptCount) ? null : TOO_MANY_RECIPIENTS),
      recipients: async (address) => {
        const refused = access.recipient(address.address)
        if (refused instanceof SmtpError) throw refused
        const targets = await decideRecipient(address.address, { config, accounts, srs: ctx.srs })
        const original = originalRecipient(address)
        const notify = notifyOf(address)
        const orcpt = orcptOf(address)
        return targets.map((target) => ({
          address: target,
          original,
          status: 'pending' as const,
          attempts: 0,
          ...(notify && { notify }),
          ...(orcpt && { orcpt }),
        }))
      },
      message: (session, txn) => ({
        check: (fields) => checkFromHeader(fields, ownedBy(txn.user)),
        edit: submissionHeaderEdit({ hostname: config.hostname, user: txn.user, hideClient: config.submission.hideClient }),
        // The content filter sees outbound mail; its headers go in front of the message.
        direction: 'outbound',
        source: 'submission',
        // RFC 3848 ESMTPSA. The user is not named in Received: (Postfix's
        // smtpd_sasl_authenticated_header is off by default), nor the recipient: with one, a
        // Bcc'd address would show; nor, with SUBMISSION_HIDE_CLIENT, the client (its address
        // would put a user's home network in every message, and in the blocklist checks of
        // receivers that read Received: fields, as mailcow and docker-mailserver remove it).
        user: txn.user,
        hideClient: config.submission.hideClient,
        dsn: envelopeDsn(session.envelope.dsn),
      }),
      queued: (txn) => limits.record(txn.user, Date.now()),
    },
  )
  const refuse = mail.refuse

  const server = new SMTPServer({
    ...listenerOptions(config, certs),
    banner: 'Facteur submission',
    secure: listener.implicitTls,
    authMethods: ['PLAIN', 'LOGIN'],
    // allowInsecureAuth stays unset: RFC 4954 §4, no credentials over a clear channel.
    authRequiredMessage: '5.7.0 Authentication required',
    // RFC 3461: NOTIFY, RET, ENVID and ORCPT are kept in the envelope for delivery's DSNs.
    hideDSN: false,

    onConnect(session, cb) {
      const refused = clients.admit(session)
      if (refused) return cb(refuse(session, 'CONNECT', refused))
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
      Promise.all([accounts.refresh(), access.refresh()])
        .then(() => {
          // The null sender (RFC 8098 §3: read receipts) names nobody; its From: is checked at DATA.
          if (address.address !== '' && !ownedBy(user)(address.address)) throw SENDER_NOT_OWNED
          const refused = access.sender(address.address)
          if (refused instanceof SmtpError) throw refused
          if (!limits.mayStart(user, Date.now())) throw RATE_LIMITED
        })
        .then(
          () => {
            mail.begin(session, { user, recipients: new Map(), rcptCount: 0, started: Date.now() })
            cb()
          },
          (err: unknown) => cb(refuse(session, 'MAIL', toSmtpError(err), { sender: address.address })),
        )
    },

    onRcptTo: mail.onRcptTo,
    onData: mail.onData,
    onClose(session) {
      clients.release(session)
      mail.onClose(session)
    },
  })
  guardListener(
    server,
    config.smtp,
    (timeout) => logger.info('timeout', { listener: listener.name, ...timeout }),
    (e) => logger.info('too many errors', { listener: listener.name, ...e }),
  )
  return server
}

function userOf(session: SMTPServerSession): string | undefined {
  return typeof session.user === 'string' ? session.user : undefined
}
