// Who is told what, and the notices queued for it: RFC 3461 §4.1 NOTIFY decides which events a
// sender hears of (none given: failures and delays; NEVER: nothing), a notice goes to the
// envelope sender from the null sender `<>` (RFC 5321 §4.5.5), never to the null sender itself,
// and a bounce that cannot be delivered goes to the postmaster instead (and no further).
import type { Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import type { ActiveMessage, RecipientState, Spool } from '@facteur/spool'
import type { OnDelayed, OnDelivered, OnFailed } from './attempt.js'
import { buildDsn, type DsnAction, type DsnRecipient } from './dsn.js'

export type Notices = { onFailed: OnFailed; onDelayed: OnDelayed; onDelivered: OnDelivered }

/** RFC 3461 §4.1: without NOTIFY an MTA reports failures and may report delays. */
function wants(r: RecipientState, event: 'SUCCESS' | 'FAILURE' | 'DELAY'): boolean {
  const notify = r.notify?.map((n) => n.toUpperCase())
  if (!notify || notify.length === 0) return event !== 'SUCCESS'
  return notify.includes(event)
}

export function createNotices(deps: { config: Config; logger: Logger; spool: Spool }): Notices {
  const { config, logger, spool } = deps
  const postmaster = config.postmaster.toLowerCase()

  async function send(message: ActiveMessage, to: string, recipients: DsnRecipient[], willRetryUntil?: Date): Promise<void> {
    const chunks: Buffer[] = []
    for await (const c of message.open()) chunks.push(c as Buffer)
    const env = message.envelope
    const dsn = buildDsn({
      envelope: env,
      recipients,
      message: Buffer.concat(chunks),
      to,
      hostname: config.hostname,
      willRetryUntil,
      language: config.dsnLanguage,
    })
    const queued = await spool.enqueue(dsn, {
      sender: '',
      recipients: [{ address: to, original: to, status: 'pending', attempts: 0 }],
      receivedAt: Date.now(),
      nextAttempt: 0,
      client: { ip: '127.0.0.1', helo: config.hostname, tls: false },
      source: 'bounce',
    })
    logger.info('notice queued', {
      queueId: env.id,
      notice: queued.id,
      action: recipients[0]?.action,
      to,
      recipients: recipients.map((r) => r.rcpt.address),
    })
  }

  return {
    async onFailed(message, failed) {
      const env = message.envelope
      const list = (action: DsnAction): DsnRecipient[] => failed.map((rcpt) => ({ rcpt, action }))
      if (env.sender === '') {
        // A bounce that bounced: the postmaster hears of it, unless it was already for the postmaster.
        if (failed.some((r) => r.address.toLowerCase() === postmaster)) {
          logger.warn('undeliverable notice to the postmaster dropped', { queueId: env.id, recipients: failed.map((r) => r.address) })
          return
        }
        await send(message, postmaster, list('failed'))
        return
      }
      const told = failed.filter((r) => wants(r, 'FAILURE'))
      if (told.length)
        await send(
          message,
          env.sender,
          told.map((rcpt) => ({ rcpt, action: 'failed' })),
        )
    },

    async onDelayed(message, waiting) {
      const env = message.envelope
      if (env.sender === '') return
      const told = waiting.filter((r) => wants(r, 'DELAY'))
      if (told.length === 0) return
      await send(
        message,
        env.sender,
        told.map((rcpt) => ({ rcpt, action: 'delayed' })),
        new Date(env.receivedAt + config.queue.lifetimeMs),
      )
    },

    async onDelivered(message, delivered) {
      const env = message.envelope
      if (env.sender === '') return
      // RFC 3461 §6.2: a host that offered DSN took the request on; otherwise we say "relayed".
      const told = delivered
        .filter(({ rcpt, outcome }) => wants(rcpt, 'SUCCESS') && !outcome.remote?.dsn)
        .map(({ rcpt, outcome }): DsnRecipient => ({
          rcpt,
          action: outcome.remote ? 'relayed' : 'delivered',
          reply: outcome.reply,
          remoteMta: outcome.remote?.mta,
        }))
      if (told.length) await send(message, env.sender, told)
    },
  }
}
