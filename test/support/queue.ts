// Watching a message on its way from a test: send a plain one through the MX, find a recipient's
// envelope in the spool, wait for a condition with a deadline (and the appliance's log on failure);
// and the envelope a spool caller writes at commit, for tests and benchmarks of the spool alone.
import assert from 'node:assert/strict'
import type { Envelope, QueueEntry, Spool } from '@facteur/spool'
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

/** What a receiving service commits for one pending recipient (the spool adds version, id and size). */
export function envelopeDraft(opts: { to: string; sender?: string; source?: string }): Omit<Envelope, 'version' | 'id' | 'size'> {
  return {
    sender: opts.sender ?? 'load@client.example',
    recipients: [{ address: opts.to, original: opts.to, status: 'pending', attempts: 0 }],
    receivedAt: Date.now(),
    nextAttempt: 0,
    client: { ip: '127.0.0.1', helo: 'client.example', tls: false },
    source: opts.source ?? 'test',
    prepend: 'Received: from client.example (127.0.0.1) by mx.ours.example\r\n',
  }
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
