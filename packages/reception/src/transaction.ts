// The mail transaction (RFC 5321 §3.3: MAIL, RCPT..., DATA) as both receiving services hold it on
// smtp-server: what each session has gathered, the shape of the RCPT and DATA handlers (the "no
// valid recipients" guard, the message through the gate and the content filter into the spool,
// 250 only once committed), and the "refused" and "queued" log lines. Who may send, where a
// recipient goes and what the message must look like are each service's policy.
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerSession } from 'smtp-server'
import type { Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import type { Envelope, RecipientState, Spool } from '@facteur/spool'
import { SmtpError, toSmtpError } from '@facteur/smtp-error'
import { claimsAuthservId, filterInspector, type FilterOutcome } from '@facteur/filter-client'
import { receiveMessage } from './receive.js'
import { receivedHeader } from './received.js'
import type { HeaderEdit, HeaderField } from './gate.js'
import type { Admission } from './admission.js'
import type { AlwaysBcc } from './always-bcc.js'
import { BODY_CHECKS_LIMIT, openHeaderChecks, type HeaderVerdict } from './header-checks.js'
import { openCanonical } from './canonical.js'

/** What one transaction has gathered; a service may keep more (submission: the user). */
export type Transaction = { recipients: Map<string, RecipientState>; rcptCount: number; started: number }

/** How one message is received: the service's checks and edits, and what the envelope records. */
export type MessagePolicy = {
  /** Refuses the message on its header fields (loops, a From: the user does not own ...). */
  check: (fields: HeaderField[]) => SmtpError | null
  /** Header fields removed or added besides forged Authentication-Results (always dropped). */
  edit?: Omit<HeaderEdit, 'drop'>
  direction: 'inbound' | 'outbound'
  /** The client's address is a proxy's (the Docker bridge gateway, SHARED_CLIENT_ADDRESSES). */
  proxied?: boolean
  source: string
  /** The authenticated user (RFC 3848 ESMTPA; kept in the envelope). */
  user?: string
  /** The recipient the Received: field names (RFC 5321 §4.4 "for"), when there is one to name. */
  traceFor?: string
  /** The Received: field names neither the client's address nor its HELO (SUBMISSION_HIDE_CLIENT). */
  hideClient?: boolean
  dsn?: Envelope['dsn']
}

export type TransactionPolicy<T extends Transaction> = {
  /** Log fields naming the session besides cid and remoteIp (listener, user). */
  fields?: (session: SMTPServerSession) => Record<string, unknown>
  /** The refusal of one more RCPT (RFC 5321 §4.5.3.1.8), or null. */
  recipientLimit: (txn: T) => SmtpError | null
  /** The recipients one RCPT TO adds; throws an SmtpError to refuse it. */
  recipients: (address: SMTPServerAddress, session: SMTPServerSession, txn: T) => Promise<RecipientState[]>
  message: (session: SMTPServerSession, txn: T) => MessagePolicy
  /** Runs once a message of this transaction is queued (rate accounting). */
  queued?: (txn: T) => void
}

type Callback = (err?: Error | null, message?: string) => void

export type Transactions<T extends Transaction> = {
  /** Starts the transaction of a session (after MAIL FROM was accepted). */
  begin(session: SMTPServerSession, txn: T): void
  /** Logs a refusal and returns what smtp-server's callbacks take. */
  refuse(session: SMTPServerSession, cmd: string, err: SmtpError, extra?: Record<string, unknown>): Error
  onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void): void
  onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb: Callback): void
  onClose(session: SMTPServerSession): void
}

export function mailTransactions<T extends Transaction>(
  deps: { config: Config; logger: Logger; spool: Spool; admission?: Admission; alwaysBcc?: AlwaysBcc },
  policy: TransactionPolicy<T>,
): Transactions<T> {
  const { config, logger, spool, admission, alwaysBcc } = deps
  const txns = new Map<string, T>()
  const headerChecks = openHeaderChecks({ configDir: config.configDir, logger })
  const canonical = openCanonical({ configDir: config.configDir, logger })
  const fields = (session: SMTPServerSession): Record<string, unknown> => ({
    cid: session.id,
    remoteIp: session.remoteAddress,
    ...policy.fields?.(session),
  })

  const refuse: Transactions<T>['refuse'] = (session, cmd, err, extra = {}) => {
    logger.info('refused', { ...fields(session), cmd, code: err.code, enhanced: err.status, reason: err.message, ...extra })
    if (err.cause) logger.warn('cause', { cid: session.id, err: String((err.cause as Error)?.message ?? err.cause) })
    return err.toServerError()
  }

  const receive = (
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    txn: T,
    cb: Callback,
    m: MessagePolicy,
    sender: string,
    bcc: RecipientState[],
  ): void => {
    // Automatic copies (ALWAYS_BCC, the bcc tables) are in the envelope, not in what the policy
    // sees (the Received: "for").
    const recipients = [...txn.recipients.values(), ...bcc.filter((r) => !txn.recipients.has(r.address))]
    const summary = (): Record<string, unknown> => ({ sender, recipients: recipients.map((r) => r.address) })
    let filtered: FilterOutcome | undefined
    let verdict: HeaderVerdict | null = null
    let bodyVerdict: HeaderVerdict | null = null
    // The header's verdict, then the body's: the first DISCARD or HOLD text.
    const discardWhy = (): string | null => verdict?.discard ?? bodyVerdict?.discard ?? null
    const holdWhy = (): string | null => verdict?.hold ?? bodyVerdict?.hold ?? null
    const logMatches = (v: HeaderVerdict | null, table: string): void => {
      for (const match of v?.matches ?? [])
        logger.log(match.action === 'warn' ? 'warn' : 'info', table, {
          cid: session.id,
          rule: match.line,
          action: match.action,
          [table === 'body_checks' ? 'line' : 'header']: match.field,
          ...(match.text && { text: match.text }),
        })
    }
    receiveMessage({
      stream,
      spool,
      limits: config.smtp,
      check: (fields) => {
        const refused = m.check(fields)
        if (refused) return refused
        verdict = headerChecks.judge(fields)
        logMatches(verdict, 'header_checks')
        return verdict?.reject ?? null
      },
      body: headerChecks.checksBody()
        ? {
            limit: BODY_CHECKS_LIMIT,
            check: (sample) => {
              // A header DISCARD ended the inspection (Postfix's cleanup stops there).
              if (verdict?.discard != null) return null
              bodyVerdict = headerChecks.judgeBody(sample.toString('latin1'))
              logMatches(bodyVerdict, 'body_checks')
              return bodyVerdict?.reject ?? null
            },
          }
        : undefined,
      // RFC 8601 §5: Authentication-Results claiming our authserv-id were not written by us.
      edit: {
        ...m.edit,
        drop: (f) => claimsAuthservId(f.name, f.raw, config.hostname),
        // header_checks first (what it replaced or removed is its own), then sender_canonical.
        rewrite: (f) => verdict?.rewrite.get(f) ?? (m.direction === 'outbound' ? canonical.field(f) : undefined),
      },
      disposition: () => (discardWhy() !== null ? 'discard' : holdWhy() !== null ? 'hold' : null),
      // The content filter sees the stored message before the commit: a refusal is our DATA reply.
      inspect: filterInspector(config.filter, {
        direction: m.direction,
        proxied: m.proxied,
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
        client: { ip: session.remoteAddress, helo: session.hostNameAppearsAs ?? '', tls: session.secure, ...(m.user && { user: m.user }) },
        source: m.source,
        ...(m.dsn && { dsn: m.dsn }),
        prepend: receivedHeader({
          helo: session.hostNameAppearsAs ?? '',
          ip: session.remoteAddress,
          hostname: config.hostname,
          queueId: id,
          esmtp: session.openingCommand !== 'HELO',
          tls: session.secure,
          authenticated: m.user !== undefined,
          recipient: m.traceFor,
          hideClient: m.hideClient,
        }),
      }),
    }).then(
      ({ id, envelope, held }) => {
        policy.queued?.(txn)
        // DISCARD: the client hears what it would have (Postfix's cleanup does the same).
        logger.info(envelope ? (held ? 'held' : 'queued') : 'discarded', {
          ...fields(session),
          queueId: id,
          ...summary(),
          ...(envelope && { size: envelope.size }),
          code: 250,
          ...(filtered && { filter: filtered.action }),
          ...(held && holdWhy() && { reason: holdWhy() }),
          ...(!envelope && discardWhy() && { reason: discardWhy() }),
          durationMs: Date.now() - txn.started,
        })
        txns.delete(session.id)
        admission?.release(session.id)
        cb(null, `2.0.0 Ok: queued as ${id}`)
      },
      (err: unknown) => {
        txns.delete(session.id)
        admission?.release(session.id)
        const extra = { ...summary(), ...(filtered && { filter: filtered.action }), durationMs: Date.now() - txn.started }
        cb(refuse(session, 'DATA', toSmtpError(err), extra))
      },
    )
  }

  return {
    begin: (session, txn) => void txns.set(session.id, txn),
    refuse,
    onRcptTo(address, session, cb) {
      const txn = txns.get(session.id)
      if (!txn) return cb(refuse(session, 'RCPT', new SmtpError(503, '5.1', 'Need MAIL command')))
      const limited = policy.recipientLimit(txn)
      if (limited) return cb(refuse(session, 'RCPT', limited, { rcpt: address.address }))
      policy.recipients(address, session, txn).then(
        (accepted) => {
          txn.rcptCount++
          const first = txn.recipients.size === 0
          for (const r of accepted) if (!txn.recipients.has(r.address)) txn.recipients.set(r.address, r)
          // SMTP_MAX_TRANSACTIONS: a message holds a place from its first recipient accepted (a
          // session whose recipients are all refused holds none); past the limit that reply waits.
          if (first && admission) void admission.admit(session.id).then(() => cb())
          else cb()
        },
        (err: unknown) => cb(refuse(session, 'RCPT', toSmtpError(err), { rcpt: address.address })),
      )
    },
    onData(stream, session, cb) {
      const txn = txns.get(session.id)
      if (!txn || txn.recipients.size === 0) {
        stream.resume()
        stream.once('end', () => cb(refuse(session, 'DATA', new SmtpError(554, '5.1', 'No valid recipients'))))
        return
      }
      const m = policy.message(session, txn)
      // A table that cannot be read is logged and the last one read kept: mail goes on.
      const tables = Promise.all([headerChecks.refresh(), canonical.refresh()]).catch((err: unknown) =>
        logger.warn('header_checks or sender_canonical unreadable', { err: String(err) }),
      )
      void tables
        .then(async () => {
          // Our side's mail (TRUSTED_NETWORKS, submission) leaves under its canonical sender.
          const given = session.envelope.mailFrom ? session.envelope.mailFrom.address : ''
          const sender = (given && m.direction === 'outbound' && canonical.map(given)) || given
          if (sender !== given) logger.info('sender rewritten', { cid: session.id, from: given, to: sender })
          const named = [...new Set([...txn.recipients.values()].map((r) => r.original))]
          const bcc = await (alwaysBcc?.(sender, named) ?? Promise.resolve([])).catch((err: unknown) => {
            logger.warn('automatic copies failed: the message is not copied', { cid: session.id, err: String(err) })
            return []
          })
          receive(stream, session, txn, cb, m, sender, bcc)
        })
        .catch((err: unknown) => {
          stream.resume()
          const failed = new SmtpError(451, '3.0', 'Local error in processing, try again later', { cause: err })
          stream.once('end', () => cb(refuse(session, 'DATA', failed)))
        })
    },
    onClose(session) {
      txns.delete(session.id)
      admission?.release(session.id)
    },
  }
}
