// SMTP smuggling: a message whose body holds an end-of-data look-alike followed by a whole second
// transaction. On :25, 587 (STARTTLS + AUTH), 465 and the alternate port, no variant may create a
// second message: only CRLF.CRLF ends DATA (RFC 5321 §4.1.1.4, §2.3.8).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { startAppliance, type Appliance } from '../support/appliance.js'
import { readMbox } from '../support/mbox.js'
import { Wire, type Mode } from './wire.js'
import { record, sampleMemory, spoolEnvelopes, totalRestarts, waitForListeners } from './figures.js'

/** End-of-data look-alikes: none contains CRLF.CRLF, so none may end the message. */
export const SMUGGLING_VARIANTS = [
  '\n.\n',
  '\r.\r',
  '\r\n.\n',
  '\n.\r\n',
  '\r\n\x00.\r\n',
  '\r\n.\r',
  '\r.\r\n',
  '\n.\r',
  '\r\n.\x00\r\n',
  '\r\n.\r\r\n',
  '\r\r\n.\r\r\n',
  '\n\n.\n\n',
  '\r\n. \r\n',
  '\r\n.\t\r\n',
  '\r\n\r.\r\n\r',
  '\r\n.\n\r\n.\n',
  '\x00\n.\n',
  '\r\n.\u2028', // U+2028 as UTF-8 bytes after the dot
] as const

let app: Appliance
const USER = 'alice@ours.example'
const PASS = 'pw-alice'
const listeners: { name: string; port: () => number; mode: Mode; auth: boolean }[] = [
  { name: ':25', port: () => app.port('smtp-ingress', 'smtp'), mode: 'plain', auth: false },
  { name: ':25 STARTTLS', port: () => app.port('smtp-ingress', 'smtp'), mode: 'starttls', auth: false },
  { name: ':587', port: () => app.port('submission', 'submission'), mode: 'starttls', auth: true },
  { name: ':465', port: () => app.port('submission', 'submissions'), mode: 'implicit', auth: true },
  { name: 'alt', port: () => app.port('submission', 'alt'), mode: 'implicit', auth: true },
]

before(async () => {
  app = await startAppliance({
    timeoutMs: 90_000,
    services: ['smtp-ingress', 'delivery', 'submission'],
    users: { [USER]: PASS, 'bob@ours.example': 'pw-bob' },
    env: { SUBMISSION_ALT_PORT: '0', SUBMISSION_RATE_MESSAGES: '10000', SUBMISSION_AUTH_DELAY: '0s' },
  })
  await waitForListeners(app, 'submission', ['submission', 'submissions', 'alt'])
})
after(() => app.stop())

test('no end-of-data variant creates a second message on any listener', async () => {
  const started = Date.now()
  const mem = sampleMemory(app)
  const outcomes: Record<string, number> = {}
  let sent = 0
  let queued = 0
  const extra: string[] = []
  for (const l of listeners) {
    for (const [i, variant] of SMUGGLING_VARIANTS.entries()) {
      const w = await Wire.open(l.port(), { mode: l.mode })
      const from = l.auth ? USER : 'sender@remote.example'
      await w.send('EHLO client.example')
      if (l.auth) assert.match(await w.send(`AUTH PLAIN ${Buffer.from(`\0${USER}\0${PASS}`).toString('base64')}`), /^235 /)
      assert.match(await w.send(`MAIL FROM:<${from}>`), /^250 /)
      assert.match(await w.send('RCPT TO:<bob@ours.example>'), /^250 /)
      assert.match(await w.send('DATA'), /^354 /)
      const smuggled = `MAIL FROM:<${from}>\r\nRCPT TO:<bob@ours.example>\r\nDATA\r\nSubject: smuggled ${l.name} ${i}\r\n\r\nsecond\r\n`
      w.write(Buffer.from(`Subject: carrier ${l.name} ${i}\r\n\r\nfirst`, 'latin1'))
      w.write(Buffer.from(variant, 'utf8'))
      w.write(Buffer.from(`${smuggled}.\r\n`, 'latin1'))
      sent++
      const reply = await w.read()
      const key = `${reply.slice(0, 9)}`
      outcomes[key] = (outcomes[key] ?? 0) + 1
      if (/queued as/.test(reply)) queued++
      // A server fooled by the variant answers the smuggled commands too: give it time to.
      const more = await w.read(100).catch(() => null)
      if (more) extra.push(`${l.name} ${JSON.stringify(variant)}: ${more}`)
      await w.trySend('QUIT')
      w.close()
    }
  }
  // Every queued message reaches bob; none of them is a smuggled one.
  const deadline = Date.now() + 20_000
  let msgs = await readMbox(path.join(app.mailDir, 'bob'))
  while (msgs.length < queued && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200))
    msgs = await readMbox(path.join(app.mailDir, 'bob'))
  }
  await new Promise((r) => setTimeout(r, 500))
  msgs = await readMbox(path.join(app.mailDir, 'bob'))
  const head = (m: string): string => m.slice(0, m.indexOf('\n\n'))
  const smuggledMsgs = msgs.filter((m) => /^Subject: smuggled/m.test(head(m)))
  const pending = (await spoolEnvelopes(app.spoolDir)).length
  const restarts = await totalRestarts(app)
  await mem.stop()
  record({
    test: 'SMTP smuggling (smuggling.test.ts)',
    load: `${SMUGGLING_VARIANTS.length} end-of-data variants × ${listeners.length} listeners (:25 plain and STARTTLS, 587, 465, alt) = ${sent} messages`,
    injected: 'bare LF / bare CR / NUL end-of-data look-alikes followed by a whole second transaction',
    sent,
    accepted: queued,
    delivered: msgs.length,
    lost: Math.max(0, queued - msgs.length - pending),
    duplicated: smuggledMsgs.length,
    restarts,
    peakRssMiB: mem.max(),
    result: `second messages created: ${smuggledMsgs.length + extra.length}; replies: ${Object.entries(outcomes)
      .map(([k, n]) => `${k.trim()}… ×${n}`)
      .join(', ')}`,
    durationS: Math.round((Date.now() - started) / 1000),
  })
  assert.deepEqual(extra, [])
  assert.deepEqual(
    smuggledMsgs.map((m) => /^Subject: .*/m.exec(m)?.[0]),
    [],
  )
  assert.equal(msgs.length + pending, queued)
  assert.equal(restarts, 0)
})
