// Watching a message on its way from a test: send a plain one through the MX, find a recipient's
// envelope in the spool, wait for a condition with a deadline (and the appliance's log on failure).
import assert from 'node:assert/strict'
import type { QueueEntry, Spool } from '@facteur/spool'
import { sendMail } from './smtp-session.js'

/** Sends a small message through an SMTP port and asserts the 250 that queues it. */
export async function sendPlain(port: number, from: string, to: string[], subject: string): Promise<void> {
  const r = await sendMail(port, {
    from,
    to,
    data: `From: <${from}>\nTo: ${to.map((t) => `<${t}>`).join(', ')}\nSubject: ${subject}\nMessage-ID: <${subject.replace(/\W/g, '')}@ours.example>\n\nHello.\n`,
  })
  assert.match(r.message ?? r.error ?? '', /^250 /, JSON.stringify(r))
}

/** The spool entry (queued, active or held) of the message for `rcpt`, if it is still there. */
export async function queuedFor(spool: Spool, rcpt: string): Promise<QueueEntry | undefined> {
  return (await spool.list()).find((e) => e.envelope.recipients.some((r) => r.address === rcpt))
}

/** Polls `probe` every 100 ms until it returns something; throws after timeoutMs with `context()`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  opts: { timeoutMs?: number; context?: () => string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000)
  for (;;) {
    const v = await probe()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${opts.context?.() ?? ''}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
