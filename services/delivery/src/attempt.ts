// One delivery attempt of one claimed message: every recipient still open is tried once, its
// outcome saved before the next (so a crash never repeats a finished recipient), then the
// message leaves the spool or goes back to the queue for its next retry.
import type { Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import type { ActiveMessage, Envelope, RecipientState } from '@facteur/spool'
import { deliverLocal } from './local.js'
import { expired, nextRetry } from './retry.js'
import type { Outcome } from './outcome.js'

/** Delivers to recipients outside our domains (outbound issue); absent means they wait. */
export type RemoteTransport = (message: ActiveMessage, recipients: RecipientState[]) => Promise<Map<RecipientState, Outcome>>
/** Called once a message is finished or expired, with the recipients that failed (bounces). */
export type OnFailed = (envelope: Envelope, failed: RecipientState[]) => Promise<void>

export async function attempt(
  message: ActiveMessage,
  deps: { config: Config; logger: Logger; remote?: RemoteTransport; onFailed?: OnFailed },
): Promise<'finished' | 'requeued'> {
  const { config, logger } = deps
  const env = message.envelope
  const open = env.recipients.filter((r) => r.status === 'pending' || r.status === 'deferred')
  const isLocal = (r: RecipientState): boolean => config.localDomains.includes(r.address.slice(r.address.lastIndexOf('@') + 1).toLowerCase())
  const record = async (r: RecipientState, o: Outcome, started: number): Promise<void> => {
    r.attempts++
    r.status = o.status
    if (o.status === 'delivered' || o.status === 'failed') r.doneAt = Date.now()
    if (o.status !== 'delivered') r.lastError = o.reply
    await message.save()
    logger.info(o.status, { queueId: env.id, sender: env.sender, rcpt: r.address, reply: o.reply, attempt: r.attempts, durationMs: Date.now() - started })
  }

  for (const r of open.filter(isLocal)) {
    const started = Date.now()
    await record(r, await deliverLocal(config, message, r), started)
  }
  const remote = open.filter((r) => !isLocal(r))
  if (remote.length) {
    const started = Date.now()
    const outcomes = deps.remote
      ? await deps.remote(message, remote)
      : new Map(remote.map((r) => [r, { status: 'deferred' as const, reply: '451 4.4.0 No outbound transport configured' }]))
    for (const r of remote) await record(r, outcomes.get(r) ?? { status: 'deferred', reply: '451 4.4.0 Not attempted' }, started)
  }

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
    if (failed.length && deps.onFailed) await deps.onFailed(env, failed)
    await message.finish()
    return 'finished'
  }
  const attempts = Math.max(...waiting.map((r) => r.attempts))
  await message.release(nextRetry(attempts, config.queue, now))
  return 'requeued'
}
