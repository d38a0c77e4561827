// Malformed input: a bounded, seeded fuzz loop of random and mutated SMTP commands, over-long
// lines (RFC 5321 §4.5.3.1), invalid UTF-8, huge headers and MIME bombs, sent to the MX and to
// the filter's HTTP API. Nothing may crash (the supervisor's restart count stays 0: a crash hidden
// by a restart is still a crash), memory stays bounded, and every reply is a well-formed reply.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { Wire, wellFormed } from './wire.js'
import { FULL, record, totalRestarts } from './figures.js'
import { startScannedAppliance } from './scanned.js'
import { prng } from '../support/prng.js'

const TEMPLATES = [
  'EHLO fuzz.example',
  'HELO fuzz.example',
  'MAIL FROM:<a@remote.example>',
  'MAIL FROM:<a@remote.example> SIZE=99999999999999999999 BODY=8BITMIME',
  'MAIL FROM:<> RET=HDRS ENVID=x+2Bx',
  'RCPT TO:<alice@ours.example>',
  'RCPT TO:<alice@ours.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@ours.example',
  'RCPT TO:<"a b"@ours.example>',
  'DATA',
  'RSET',
  'NOOP',
  'VRFY alice',
  'EXPN staff',
  'HELP',
  'AUTH PLAIN AGFsaWNlAHB3',
  'BDAT 10 LAST',
  'XCLIENT ADDR=1.2.3.4',
  'ETRN ours.example',
]

function mutate(rand: () => number, s: string): Buffer {
  const b = Buffer.from(s, 'latin1')
  const out: number[] = [...b]
  const ops = 1 + Math.floor(rand() * 4)
  for (let i = 0; i < ops; i++) {
    const at = Math.floor(rand() * (out.length + 1))
    switch (Math.floor(rand() * 6)) {
      case 0:
        out.splice(at, 1, Math.floor(rand() * 256)) // flip a byte
        break
      case 1:
        out.splice(at, 0, ...Array.from({ length: 1 + Math.floor(rand() * 8) }, () => Math.floor(rand() * 256)))
        break
      case 2:
        out.splice(
          at,
          0,
          ...out.slice(0, Math.floor(rand() * out.length)).concat(...Array(Math.floor(rand() * 20)).fill(out.slice(at, at + 4))),
        ) // repeat
        break
      case 3:
        out.length = at // truncate
        break
      case 4:
        out.splice(at, 0, 0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80) // invalid UTF-8
        break
      default:
        out.splice(at, 0, ...Buffer.from(['<', '>', ':', '@', '"', '\\', '%', '\0', ' ', '\t'][Math.floor(rand() * 10)]))
    }
  }
  // Keep one command per line: CR and LF inside would only make more commands.
  return Buffer.from(out.filter((c) => c !== 0x0a && c !== 0x0d))
}

function fuzzLine(rand: () => number): Buffer {
  const r = rand()
  if (r < 0.6) return mutate(rand, TEMPLATES[Math.floor(rand() * TEMPLATES.length)])
  if (r < 0.8)
    return Buffer.from(Array.from({ length: Math.floor(rand() * 600) }, () => Math.floor(rand() * 256)).filter((c) => c !== 10 && c !== 13))
  // RFC 5321 §4.5.3.1.4: a command line is at most 512 octets; go past it by a little and by a lot.
  const len = [511, 512, 513, 1001, 65_537, 1_048_576][Math.floor(rand() * 6)]
  return Buffer.from(TEMPLATES[Math.floor(rand() * TEMPLATES.length)] + 'x'.repeat(len))
}

/** A whole message through one SMTP transaction; the reply to the final dot (or why there is none). */
async function sendMessage(port: number, message: Buffer | string): Promise<string> {
  const w = await Wire.open(port, { timeoutMs: 60_000 })
  try {
    await w.send('EHLO fuzz.example')
    await w.send('MAIL FROM:<a@remote.example>')
    await w.send('RCPT TO:<alice@ours.example>')
    const d = await w.trySend('DATA')
    if (!d.startsWith('354')) return d
    w.write(message)
    return await w.trySend('.')
  } finally {
    w.close()
  }
}

function nested(depth: number): string {
  let s = 'Content-Type: text/plain\r\n\r\ninnermost\r\n'
  for (let i = depth; i > 0; i--) s = `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n${s}--b${i}--\r\n`
  return `Subject: deep MIME\r\nMIME-Version: 1.0\r\n${s}`
}

function manyParts(n: number): string {
  const parts = Array.from({ length: n }, (_, i) => `--bb\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`).join('')
  return `Subject: many parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="bb"\r\n\r\n${parts}--bb--\r\n`
}

/** Messages that are legal SMTP but hostile content; each must get a well-formed reply. */
const MESSAGES: [string, () => string | Buffer][] = [
  ['text line of 2,000 octets (limit 1,000, RFC 5321 §4.5.3.1.6)', () => `Subject: long line\r\n\r\n${'y'.repeat(2000)}\r\n`],
  ['text line of 1 MiB', () => `Subject: longer line\r\n\r\n${'y'.repeat(1 << 20)}\r\n`],
  [
    'invalid UTF-8 in header and body',
    () =>
      Buffer.concat([
        Buffer.from('Subject: '),
        Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xff]),
        Buffer.from('\r\nFrom: '),
        Buffer.from([0xf0, 0x28, 0x8c, 0x28]),
        Buffer.from('\r\n\r\n'),
        Buffer.from([0xe2, 0x82, 0x28, 0xfe, 0xff]),
        Buffer.from('\r\n'),
      ]),
  ],
  ['one 300 KiB header field (HEADER_SIZE_LIMIT 256K)', () => `Subject: huge\r\nX-Huge: ${'h'.repeat(300 * 1024)}\r\n\r\nbody\r\n`],
  [
    'one 300 KiB folded header field',
    () => `Subject: folded\r\nX-Folded: start\r\n${' fold fold fold fold fold fold fold fold\r\n'.repeat(7500)}\r\nbody\r\n`,
  ],
  [
    '5,000 header fields (HEADER_COUNT_LIMIT 1000)',
    () => `${Array.from({ length: 5000 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\nSubject: many headers\r\n\r\nbody\r\n`,
  ],
  ['header section without a body or blank line', () => `Subject: no body\r\nX-A: b\r\n`],
  ['MIME bomb: 1,000 nested multiparts', () => nested(1000)],
  ['MIME bomb: 20,000 parts', () => manyParts(20_000)],
  [
    'multipart with a boundary that never closes',
    () =>
      `Subject: open\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\n${'open\r\n'.repeat(1000)}`,
  ],
  [
    'broken base64 and quoted-printable',
    () =>
      `Subject: enc\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="q"\r\n\r\n--q\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!====@@@@\r\n--q\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=\r\n--q--\r\n`,
  ],
  [
    'encoded-word bombs in headers',
    () => `Subject: ${'=?UTF-8?B?' + 'w6k='.repeat(2000) + '?= '.repeat(1)}\r\nFrom: =?x-unknown?Q?=FF=FE?= <a@b>\r\n\r\nbody\r\n`,
  ],
  ['NUL bytes in header and body', () => `Subject: nul\0nul\r\n\r\nbody\0body\r\n`],
]

test(
  'the MX and the filter survive fuzzed commands, over-long lines, invalid UTF-8, huge headers and MIME bombs',
  { timeout: 240_000 },
  async (t) => {
    const started = Date.now()
    const seed = Number(process.env.HOSTILE_SEED ?? Date.now() % 1_000_000)
    const { app, port, mem } = await startScannedAppliance(t, {
      users: { 'alice@ours.example': 'pw' },
      // No pause past SMTP_SOFT_ERROR_LIMIT (a fuzzed session is mostly errors, and the loop is
      // bounded in time); SMTP_HARD_ERROR_LIMIT's 421 4.7.0 stays, one of the replies it meets.
      env: { MESSAGE_SIZE_LIMIT: '10M', SMTP_TIMEOUT: '20s', SMTP_SOFT_ERROR_LIMIT: '0' },
    })
    const bad: string[] = []
    const codes: Record<string, number> = {}
    const note = (what: string, reply: string): void => {
      const k = reply.startsWith('closed') ? 'closed' : reply.slice(0, 3)
      codes[k] = (codes[k] ?? 0) + 1
      if (!reply.startsWith('closed') && !wellFormed(reply)) bad.push(`${what}: ${JSON.stringify(reply.slice(0, 200))}`)
    }

    // 1. The fuzz loop: FUZZ_MS of sessions, 4 at a time, up to 25 commands each.
    const FUZZ_MS = FULL ? 120_000 : 10_000
    let sessions = 0
    let commands = 0
    const end = Date.now() + FUZZ_MS
    const fuzzer = async (k: number): Promise<void> => {
      const rand = prng(seed + k)
      while (Date.now() < end) {
        sessions++
        let w: Wire
        try {
          w = await Wire.open(port, { timeoutMs: 15_000 })
        } catch (e) {
          bad.push(`connect: ${(e as Error).message}`)
          await new Promise((r) => setTimeout(r, 200))
          continue
        }
        note('greeting', w.greeting)
        if (rand() < 0.7) note('EHLO', await w.trySend('EHLO fuzz.example'))
        for (let i = 0; i < 25 && !w.closed && Date.now() < end; i++) {
          const line = fuzzLine(rand)
          commands++
          w.write(Buffer.concat([line, Buffer.from('\r\n')]))
          let reply: string
          try {
            reply = await w.read()
          } catch (e) {
            reply = `closed: ${(e as Error).message}`
            if (/no reply within/.test(reply)) bad.push(`no reply to ${JSON.stringify(line.subarray(0, 80).toString('latin1'))}`)
          }
          note(line.subarray(0, 40).toString('latin1'), reply)
          if (reply.startsWith('354'))
            note('fuzzed DATA', await w.trySend(`Subject: fuzz\r\n\r\n${line.toString('latin1').slice(0, 2000)}\r\n.`))
        }
        w.close()
      }
    }
    await Promise.all([0, 1, 2, 3].map(fuzzer))

    // 2. Hostile messages through a whole transaction.
    const messageReplies: string[] = []
    for (const [name, make] of MESSAGES) {
      const reply = await sendMessage(port, make())
      note(name, reply)
      messageReplies.push(`${name}: ${reply.slice(0, 9).trim()}`)
      if (reply.startsWith('closed')) bad.push(`${name}: ${reply}`)
    }

    // 3. The same content and broken requests straight to the filter's HTTP API.
    const filterPort = app.port('filter', 'http')
    const post = (body: string | Buffer, envelope: string | undefined, path = '/v1/check'): Promise<number> =>
      new Promise((resolve) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port: filterPort,
            path,
            method: 'POST',
            headers: envelope === undefined ? {} : { 'X-Facteur-Envelope': envelope },
            timeout: 60_000,
          },
          (res) => {
            res.resume()
            res.on('end', () => resolve(res.statusCode ?? 0))
          },
        )
        req.on('error', () => resolve(-1))
        req.on('timeout', () => req.destroy())
        req.end(body)
      })
    const env = JSON.stringify({
      direction: 'inbound',
      ip: '192.0.2.1',
      helo: 'h.example',
      sender: 'a@remote.example',
      recipients: ['alice@ours.example'],
    })
    const filterStatus: Record<string, number> = {}
    const filterCases: [string, () => Promise<number>][] = [
      ['no envelope', () => post('Subject: x\r\n\r\ny\r\n', undefined)],
      ['envelope not JSON', () => post('Subject: x\r\n\r\ny\r\n', '{not json')],
      [
        'envelope with a bad ip',
        () => post('Subject: x\r\n\r\ny\r\n', JSON.stringify({ direction: 'inbound', ip: 'x', helo: '', sender: '', recipients: ['a@b'] })),
      ],
      [
        'envelope of 1 MiB',
        () =>
          post(
            'Subject: x\r\n\r\ny\r\n',
            JSON.stringify({ direction: 'inbound', ip: '192.0.2.1', helo: 'h'.repeat(1 << 20), sender: '', recipients: ['a@b'] }),
          ),
      ],
      ['unknown path', () => post('x', env, '/v1/../../etc/passwd')],
      ['empty body', () => post('', env)],
      ['body of 40 MiB (over the size limit)', () => post(Buffer.alloc(40 << 20, 0x61), env)],
      ...MESSAGES.map(([name, make]): [string, () => Promise<number>] => [name, () => post(make(), env)]),
    ]
    for (const [name, run] of filterCases) {
      const status = await run()
      filterStatus[name] = status
      if (status === -1 || status >= 500) bad.push(`filter ${name}: HTTP ${status}`)
    }

    // 4. Still serving: a plain message is accepted.
    const after = await sendMessage(port, 'Subject: after the fuzz\r\n\r\nstill here\r\n')
    const restarts = await totalRestarts(app)
    const peak = mem.peak()
    await mem.stop()
    record({
      test: 'malformed input (malformed.test.ts)',
      load: `${sessions} fuzz sessions, ${commands} fuzzed commands in ${FUZZ_MS / 1000} s (seed ${seed}); ${MESSAGES.length} hostile messages to :25 and ${filterCases.length} requests to the filter API`,
      injected:
        'random and mutated commands, lines of 513 B to 1 MiB, invalid UTF-8, NUL, 300 KiB headers, 5,000 fields, 1,000-deep and 20,000-part MIME, broken encodings',
      restarts,
      peakRssMiB: mem.max(),
      result: `${bad.length} malformed/missing replies; reply codes ${JSON.stringify(codes)}; messages: ${messageReplies.join('; ')}; filter HTTP: ${Object.values(filterStatus).join(',')}; peak RSS ${JSON.stringify(peak)}; afterwards ${after.slice(0, 3)}`,
      durationS: Math.round((Date.now() - started) / 1000),
    })
    t.diagnostic(`seed ${seed}`)
    assert.deepEqual(bad, [])
    assert.equal(restarts, 0, 'no service crashed')
    assert.match(after, /^250 /)
    for (const [name, mib] of Object.entries(peak)) assert.ok(mib < 512, `${name} peaked at ${mib} MiB`)
  },
)
