// Every reply carries an enhanced status code (RFC 2034 §3, RFC 3463), on every listener: a
// malformed session (unknown commands, bad syntax, bad sequences, refused addresses, over-long
// and 8-bit lines, a bare LF in DATA, arbitrary bytes), the 421 at the client limit and the
// 421 at the deadline. Only the greeting and the replies to HELO/EHLO are exempt (RFC 2034 §3).
// Each code is given once: `550 5.1.1 5.1.1 ...` would fail the pattern.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startAppliance, type Appliance } from '../support/appliance.js'
import { Wire, type Mode } from './wire.js'
import { record, totalRestarts, waitForListeners } from './figures.js'

const ENHANCED = /^\d{3}[ -][245]\.\d{1,3}\.\d{1,3} /
const TWICE = /^\d{3}[ -][245]\.\d{1,3}\.\d{1,3} [245]\.\d{1,3}\.\d{1,3} /
const LIMIT = 20

function session(local: string): (string | Buffer)[] {
  // 12 lines of arbitrary bytes (no CR or LF), the same on every run.
  const garbage = Array.from({ length: 12 }, (_, i) =>
    Buffer.from(Array.from({ length: 7 + i * 6 }, (_, j) => (i * 131 + j * 37 + 1) % 256).filter((c) => c !== 10 && c !== 13)),
  )
  return [
    'MAIL FROM:<a@remote.example>',
    'FROB',
    'EHLO',
    'HELO',
    'EHLO replies.example',
    'RCPT TO:<alice@ours.example>',
    'DATA',
    'MAIL FROM:<bad',
    'MAIL FROM:<a@remote.example> SIZE=abc',
    'MAIL FROM:<a@remote.example>',
    'MAIL FROM:<b@remote.example>',
    'MAIL FROM:<a@remote.example> BOGUS=1',
    'RCPT TO:<>',
    'RCPT TO:<nobody@ours.example>',
    'RCPT TO:<user%other.example@ours.example>',
    'RCPT TO:<"a b"@ours.example>',
    'RCPT TO:<someone@elsewhere.example>',
    `RCPT TO:<${local}> NOTIFY=BOGUS`,
    'RCPT TO:<@relay.example:alice@ours.example>',
    'DATA',
    'VRFY',
    'VRFY alice',
    'EXPN staff',
    'HELP',
    'NOOP',
    'RSET',
    'AUTH PLAIN AGFsaWNlAHB3',
    'STARTTLS now',
    'BDAT 10 LAST',
    'XCLIENT ADDR=1.2.3.4',
    'ETRN ours.example',
    `NOOP ${'x'.repeat(1000)}`,
    Buffer.from([0x4d, 0x41, 0x49, 0x4c, 0x20, 0xc3, 0x28, 0xff, 0xfe]),
    ...garbage,
    'EHLO replies.example',
    'MAIL FROM:<a@remote.example>',
    `RCPT TO:<${local}>`,
    'DATA',
    // RFC 5321 §2.3.8: a bare LF is refused (SMTP smuggling).
    'Subject: bare LF\nx\r\n.',
    'QUIT',
  ]
}

/** Sends the lines one at a time, reconnecting when the server closes (after its 421s). */
async function malformed(port: number, mode: Mode, lines: (string | Buffer)[]): Promise<{ exempt: string[]; replies: string[] }> {
  const exempt: string[] = []
  const replies: string[] = []
  let w: Wire | null = null
  let inData = false
  for (const line of lines) {
    if (!w || w.closed) {
      w?.close()
      w = await Wire.open(port, { mode: mode === 'starttls' ? 'plain' : mode, timeoutMs: 30_000 })
      exempt.push(w.greeting)
      inData = false
    }
    // A DATA that was accepted (source routes are ignored, RFC 5321 §4.1.1.3): end its message first.
    if (inData && !(typeof line === 'string' && line.startsWith('Subject:'))) replies.push(await w.trySend('Subject: x\r\n\r\nx\r\n.'))
    inData = false
    const text = typeof line === 'string' ? line : line.toString('latin1')
    w.write(Buffer.concat([typeof line === 'string' ? Buffer.from(line, 'latin1') : line, Buffer.from('\r\n')]))
    let reply: string
    try {
      reply = await w.read()
    } catch (e) {
      replies.push(`no reply to ${JSON.stringify(text.slice(0, 40))}: ${(e as Error).message}`)
      continue
    }
    // RFC 2034 §3: the replies to HELO and EHLO are exempt.
    if (/^(EHLO|HELO)\b/i.test(text)) exempt.push(reply)
    else replies.push(reply)
    // RFC 2034: 3xx intermediate replies carry none either.
    if (reply.startsWith('354')) {
      replies.pop()
      inData = true
    }
    // RFC 5321 §3.8: the server closes after a 421; the next line goes to a new session.
    if (reply.startsWith('421')) {
      w.close()
      w = null
    }
  }
  w?.close()
  return { exempt, replies }
}

let app: Appliance
const LISTENERS: { name: string; service: string; listener: string; mode: Mode }[] = [
  { name: ':25', service: 'smtp-ingress', listener: 'smtp', mode: 'plain' },
  { name: ':587', service: 'submission', listener: 'submission', mode: 'plain' },
  { name: ':465', service: 'submission', listener: 'submissions', mode: 'implicit' },
  { name: 'SUBMISSION_ALT_PORT', service: 'submission', listener: 'alt', mode: 'implicit' },
]

test(
  'every reply of a malformed session, the 421 at the client limit and the 421 at the deadline carry one enhanced status code, on every listener',
  { timeout: 300_000 },
  async (t) => {
    const started = Date.now()
    app = await startAppliance({
      timeoutMs: 120_000,
      services: ['smtp-ingress', 'delivery', 'submission'],
      users: { 'alice@ours.example': 'pw' },
      // One session makes every error there is: no error limits here (listener-guard.test.ts has them).
      env: {
        SMTP_MAX_CLIENTS: String(LIMIT),
        SMTP_TIMEOUT: '5s',
        SUBMISSION_ALT_PORT: '0',
        SMTP_SOFT_ERROR_LIMIT: '0',
        SMTP_HARD_ERROR_LIMIT: '0',
      },
    })
    t.after(() => app.stop())
    await waitForListeners(app, 'submission', ['submission', 'submissions', 'alt'])

    const bad: string[] = []
    const counts: string[] = []
    for (const l of LISTENERS) {
      const port = app.port(l.service, l.listener)
      const { exempt, replies } = await malformed(port, l.mode, session('alice@ours.example'))

      // An authenticated session on submission: the transaction's own refusals.
      if (l.service === 'submission') {
        const w = await Wire.open(port, { mode: l.mode === 'plain' ? 'starttls' : l.mode, timeoutMs: 30_000 })
        exempt.push(await w.send('EHLO replies.example'))
        for (const line of [
          `AUTH PLAIN ${Buffer.from('\0alice@ours.example\0wrong').toString('base64')}`,
          `AUTH PLAIN ${Buffer.from('\0alice@ours.example\0pw').toString('base64')}`,
          'MAIL FROM:<bob@ours.example>',
          'MAIL FROM:<alice@ours.example>',
          'RCPT TO:<nobody@ours.example>',
          'RCPT TO:<bad address>',
          'DATA',
          'RCPT TO:<alice@ours.example>',
          'DATA',
        ])
          replies.push(await w.trySend(line))
        if (replies.at(-1)?.startsWith('354')) {
          replies.pop()
          replies.push(await w.trySend('From: <bob@ours.example>\r\nSubject: not hers\r\n\r\nx\r\n.'))
        }
        w.close()
      }

      // The client limit: LIMIT sessions held, one more is told 421.
      const held = await Promise.all(
        Array.from({ length: LIMIT }, () => Wire.open(port, { mode: l.mode === 'implicit' ? 'implicit' : 'plain', timeoutMs: 30_000 })),
      )
      const over = await Wire.open(port, { mode: l.mode === 'implicit' ? 'implicit' : 'plain', timeoutMs: 30_000 }).then(
        (w) => (w.close(), w.greeting),
        (e: Error) => `error: ${e.message}`,
      )
      replies.push(over)
      if (!/^421 4\.3\.2 /.test(over)) bad.push(`${l.name}: at the client limit: ${over}`)
      // The deadline: a held session that says nothing is told 421 4.4.2.
      const idle = await held[0].read(30_000).catch((e: Error) => `no reply: ${e.message}`)
      replies.push(idle)
      if (!/^421 4\.4\.2 .*timeout exceeded$/.test(idle)) bad.push(`${l.name}: at the deadline: ${idle}`)
      for (const w of held) w.close()

      for (const r of replies)
        for (const line of r.split('\n'))
          if (!ENHANCED.test(line) || TWICE.test(line)) bad.push(`${l.name}: ${JSON.stringify(line.slice(0, 120))}`)
      const ehlo = exempt.find((r) => r.includes('ENHANCEDSTATUSCODES'))
      if (!ehlo) bad.push(`${l.name}: EHLO does not advertise ENHANCEDSTATUSCODES`)
      const codes = [...new Set(replies.map((r) => r.split('\n').at(-1)!.slice(0, 9)))].sort()
      counts.push(`${l.name}: ${replies.length} replies (${codes.join(', ')})`)
      t.diagnostic(`${l.name}: ${replies.length} replies checked, ${exempt.length} exempt`)
    }

    const restarts = await totalRestarts(app)
    record({
      test: 'enhanced status codes on every reply (replies.test.ts)',
      load: `one malformed session (${session('x').length} lines: unknown commands, bad syntax and sequences, refused addresses, 1 KB and 8-bit lines, a bare LF in DATA, 12 lines of arbitrary bytes) per listener (:25, 587, 465, alternate), an authenticated one on submission, ${LIMIT + 1} connections at SMTP_MAX_CLIENTS=${LIMIT}, one idle past SMTP_TIMEOUT=5s`,
      injected: 'replies smtp-server writes itself (500, 501, 503, 421) next to ours',
      restarts,
      result: `${bad.length} reply lines without exactly one enhanced code (greeting and HELO/EHLO replies exempt, RFC 2034 §3); ${counts.join('; ')}`,
      durationS: Math.round((Date.now() - started) / 1000),
    })
    assert.deepEqual(bad, [])
    assert.equal(restarts, 0)
  },
)
