// One delivery attempt of one claimed message: every recipient still open is tried once, the
// outcomes saved together at the end of the attempt (so a retry never repeats a saved
// recipient), then the message leaves the spool or goes back to the queue for its next retry.
import type { Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import type { ActiveMessage, RecipientState } from '@facteur/spool'
import { HeldMessage } from '@facteur/mailbox'
import { deliverLocal, deliverLocalShared } from './local.js'
import { expired, nextRetry } from './retry.js'
import type { Outcome } from './outcome.js'
import type { Quotas } from './quota.js'
import type { Lmtp } from './lmtp.js'

/** Delivers to recipients outside our domains (outbound issue); absent means they wait. */
export type RemoteTransport = (message: ActiveMessage, recipients: RecipientState[]) => Promise<Map<RecipientState, Outcome>>
/** Called once a message is finished or expired, with the recipients that failed (bounces). */
export type OnFailed = (message: ActiveMessage, failed: RecipientState[]) => Promise<void>
/** Called once, when a message still waiting has waited DELAY_WARNING (RFC 3464 `delayed`). */
export type OnDelayed = (message: ActiveMessage, waiting: RecipientState[]) => Promise<void>
/** Called after an attempt with the recipients it delivered (NOTIFY=SUCCESS reports). */
export type OnDelivered = (message: ActiveMessage, delivered: { rcpt: RecipientState; outcome: Outcome }[]) => Promise<void>
/** Whether a recipient's copy goes into a mailbox here (FALLBACK_RELAY sends unknown names away). */
export type IsLocal = (r: RecipientState) => Promise<boolean>

/** Local copies of one message written at once (a message may have up to MAX_RECIPIENTS). */
const LOCAL_PARALLEL = 16
/** Messages up to this size are read into memory once for all their local copies; larger ones stream per copy. */
const HELD_MAX = 1024 * 1024

export type AttemptDeps = {
  config: Config
  logger: Logger
  remote?: RemoteTransport
  isLocal?: IsLocal
  onFailed?: OnFailed
  onDelayed?: OnDelayed
  onDelivered?: OnDelivered
  /** MAILBOX_QUOTA and users' own quotas (absent: none). */
  quotas?: Quotas
  /** LOCAL_TRANSPORT=lmtp: local copies go to this LMTP server instead of into the mailboxes. */
  lmtp?: Lmtp
}

export async function attempt(message: ActiveMessage, deps: AttemptDeps): Promise<'finished' | 'requeued'> {
  const { config, logger } = deps
  const env = message.envelope
  const open = env.recipients.filter((r) => r.status === 'pending' || r.status === 'deferred')
  const inLocalDomain = async (r: RecipientState): Promise<boolean> =>
    config.localDomains.includes(r.address.slice(r.address.lastIndexOf('@') + 1).toLowerCase())
  const isLocal = deps.isLocal ?? inLocalDomain
  const delivered: { rcpt: RecipientState; outcome: Outcome }[] = []
  const record = (r: RecipientState, o: Outcome, started: number): void => {
    if (o.status === 'delivered') delivered.push({ rcpt: r, outcome: o })
    r.attempts++
    r.status = o.status
    if (o.status === 'delivered' || o.status === 'failed') r.doneAt = Date.now()
    if (o.status !== 'delivered') r.lastError = o.reply
    logger.info(o.status, {
      queueId: env.id,
      sender: env.sender,
      rcpt: r.address,
      reply: o.reply,
      ...(o.detail ? { detail: o.detail } : {}),
      attempt: r.attempts,
      durationMs: Date.now() - started,
    })
  }

  const local: RecipientState[] = []
  const remote: RecipientState[] = []
  for (const r of open) ((await isLocal(r)) ? local : remote).push(r)
  // Local copies are written side by side (each its own mailbox): their fsyncs overlap; Maildir
  // copies share one file. A small message is read once and converted once for all (HeldMessage).
  const content = local.length && !deps.lmtp && env.size <= HELD_MAX ? new HeldMessage(await message.read()) : undefined
  if (local.length && deps.quotas) await deps.quotas.refresh()
  if (local.length && deps.lmtp) {
    // One LMTP transaction for all of them, an answer for each.
    const started = Date.now()
    const outcomes = await deps.lmtp.deliver(message, local)
    local.forEach((r, i) => record(r, outcomes[i], started))
  } else if (local.length > 1 && config.mailbox.format === 'maildir') {
    // Maildirs: one file for all the local copies, hard-linked into each.
    const started = Date.now()
    const outcomes = await deliverLocalShared(config, message, local, content, deps.quotas)
    local.forEach((r, i) => record(r, outcomes[i], started))
  } else {
    let nextLocal = 0
    await Promise.all(
      Array.from({ length: Math.min(LOCAL_PARALLEL, local.length) }, async () => {
        while (nextLocal < local.length) {
          const r = local[nextLocal++]
          const started = Date.now()
          record(r, await deliverLocal(config, message, r, { content, quotas: deps.quotas }), started)
        }
      }),
    )
  }
  if (remote.length) {
    const started = Date.now()
    const outcomes = deps.remote
      ? await deps.remote(message, remote)
      : new Map(remote.map((r) => [r, { status: 'deferred' as const, reply: '451 4.4.0 No outbound transport configured' }]))
    for (const r of remote) record(r, outcomes.get(r) ?? { status: 'deferred', reply: '451 4.4.0 Not attempted' }, started)
  }
  // The outcomes are saved once, before anything is reported or the message moves on (a crash
  // before the save re-delivers this attempt's copies: a duplicate, never a loss). Once every
  // recipient has its copy the message leaves the spool: finish() removes the envelope durably
  // (a grouped fsync of active/), which records the outcomes as well as a rewrite would. Saved
  // when a success report (RFC 3461 NOTIFY=SUCCESS) is still to be queued.
  const everyoneDelivered = env.recipients.every((x) => x.status === 'delivered')
  const reportsSuccess = env.recipients.some((x) => x.notify?.some((n) => n.toUpperCase() === 'SUCCESS'))
  if (open.length && (!everyoneDelivered || reportsSuccess)) await message.save()

  if (delivered.length && deps.onDelivered) await notice(logger, env.id, () => deps.onDelivered!(message, delivered))

  const now = Date.now()
  if (expired(env.receivedAt, config.queue, now)) {
    for (const r of env.recipients)
      if (r.status === 'deferred' || r.status === 'pending') {
        r.status = 'failed'
        r.doneAt = now
        r.lastError = `${r.lastError ?? '451 4.4.7'} (gave up: message too old, RFC 3463 4.4.7)`
      }
    await message.save()
  }
  const waiting = env.recipients.filter((r) => r.status === 'deferred' || r.status === 'pending')
  if (waiting.length === 0) {
    const failed = env.recipients.filter((r) => r.status === 'failed' && open.includes(r))
    if (failed.length && deps.onFailed) await deps.onFailed(message, failed)
    await message.finish()
    return 'finished'
  }
  // RFC 3464 `delayed`: one warning per message, once it has waited DELAY_WARNING.
  const warnAfter = config.outbound.delayWarningMs
  if (warnAfter !== null && !env.warnedAt && now - env.receivedAt >= warnAfter && deps.onDelayed) {
    await notice(logger, env.id, () => deps.onDelayed!(message, waiting))
    env.warnedAt = now
  }
  const attempts = Math.max(...waiting.map((r) => r.attempts))
  await message.release(nextRetry(attempts, config.queue, now))
  return 'requeued'
}

/** A success or delay notice that cannot be queued is logged; the delivery itself stands. */
async function notice(logger: Logger, queueId: string, send: () => Promise<void>): Promise<void> {
  try {
    await send()
  } catch (err) {
    logger.error('cannot queue a delivery notice', { queueId, err: (err as Error).message })
  }
}
