// LOCAL_TRANSPORT=lmtp:HOST:PORT: local copies handed to an LMTP server (RFC 2033), Dovecot's as
// docker-mailserver and mailcow do it, instead of written into the mailboxes here: the server
// then runs its users' Sieve scripts (vacation replies, filing into folders), keeps its indexes
// and applies its quotas. One transaction for all of a message's local recipients; LMTP answers
// the message once per recipient (RFC 2033 §4.2), and each answer is that recipient's outcome
// (2yz delivered, 4yz deferred, 5yz failed, as for any host). Through nodemailer's LMTP client.
import nodemailer from 'nodemailer'
import type { Config } from '@facteur/config'
import type { ActiveMessage, RecipientState } from '@facteur/spool'
import type { HealthCheck } from '@facteur/health'
import type { Outcome } from './outcome.js'
import { fromReply, oneLine, recordRefusals, type NodemailerError } from './outbound/smtp-client.js'

export type Lmtp = {
  /** Outcomes of one message for its local recipients, in their order. */
  deliver(message: ActiveMessage, rcpts: RecipientState[]): Promise<Outcome[]>
  /** /healthz: the server greets us. */
  health: HealthCheck
  close(): void
}

export function lmtpTransport(config: Config, server: { host: string; port: number }): Lmtp {
  const where = `${server.host}:${server.port}`
  const options = {
    lmtp: true,
    host: server.host,
    port: server.port,
    name: config.hostname,
    secure: false,
    ignoreTLS: true,
    connectionTimeout: config.outbound.connectTimeoutMs,
    greetingTimeout: config.outbound.greetingTimeoutMs,
    socketTimeout: config.outbound.commandTimeoutMs,
  }
  const transport = nodemailer.createTransport({
    ...options,
    pool: true,
    maxConnections: 4,
    maxMessages: 100,
    maxRequeues: 1,
    idleTimeout: 30_000,
  })

  return {
    async deliver(message, rcpts) {
      const byAddress = new Map(rcpts.map((r) => [r.address.toLowerCase(), r]))
      const outcomes = new Map<RecipientState, Outcome>()
      const refusedOnes = (errors: NodemailerError[] | undefined): void =>
        recordRefusals(errors, (a) => byAddress.get(a.toLowerCase()), where, outcomes)
      try {
        const info = (await transport.sendMail({
          envelope: { from: message.envelope.sender === '' ? false : message.envelope.sender, to: rcpts.map((r) => r.address) },
          // In memory, as for remote hosts: a stream opened for a server that never answers would
          // hold its file open until collected.
          raw: await message.read(),
        })) as { accepted: unknown[]; rejectedErrors?: NodemailerError[] }
        refusedOnes(info.rejectedErrors)
        for (const a of info.accepted) {
          const r = byAddress.get(String(a).toLowerCase())
          if (r && !outcomes.has(r)) outcomes.set(r, { status: 'delivered', reply: `250 2.0.0 Delivered by LMTP (${where})` })
        }
      } catch (caught) {
        const err = caught as NodemailerError
        refusedOnes(err.rejectedErrors)
        // MAIL FROM or the whole message refused: that reply for each recipient without one.
        // No answer at all (refused connection, timeout): try again later; the mail waits here.
        const rest: Outcome = err.responseCode
          ? fromReply(err.response, where)
          : { status: 'deferred', reply: `451 4.4.1 LMTP server ${where}: ${err.message}` }
        for (const r of rcpts) if (!outcomes.has(r)) outcomes.set(r, rest)
      }
      // A recipient the server neither took nor refused (a reply lost) is tried again.
      return rcpts.map(
        (r) => outcomes.get(r) ?? { status: 'deferred', reply: `451 4.4.0 LMTP server ${where}: no reply for this recipient` },
      )
    },
    async health() {
      // A connection of its own, LHLO answered, closed (transport.verify()).
      const probe = nodemailer.createTransport({ ...options, connectionTimeout: 2000, greetingTimeout: 2000, socketTimeout: 2000 })
      try {
        await probe.verify()
        return { status: 'ok' }
      } catch (err) {
        const e = err as NodemailerError
        return {
          status: 'fail',
          detail: `LMTP server ${where} unreachable: ${e.response ? oneLine(e.response) : e.message}`,
          dependency: 'lmtp',
        }
      } finally {
        probe.close()
      }
    },
    close: () => transport.close(),
  }
}
