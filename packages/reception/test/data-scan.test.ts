// data-scan.ts against smtp-server's own DATA reader: the same random sessions (commands, DATA
// with dot-led lines, escape dots, terminators, bare CR and LF, pipelined commands after the
// terminator, or none), cut into the same random chunks, must give the same commands and the same
// message bytes, in the same order.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js'
import { feedDataStream, libraryFeedDataStream } from '../src/data-scan.js'
import { prng } from '../../../test/support/prng.js'

type Event = string

/** Runs `chunks` through an SMTPStream reading DATA with `feed`; returns what came out. */
async function run(feed: typeof feedDataStream, chunks: Buffer[]): Promise<Event[]> {
  const s = new SMTPStream()
  s._feedDataStream = feed
  const events: Event[] = []
  s.oncommand = (command, callback) => {
    const line = command.toString('latin1')
    events.push(`cmd ${line}`)
    if (line === 'DATA') {
      const parts: Buffer[] = []
      const data = s.startDataMode(1_000_000)
      data.on('data', (b: Buffer) => parts.push(b))
      data.on('end', () => {
        events.push(`data ${JSON.stringify(Buffer.concat(parts).toString('latin1'))} bytes=${data.byteLength}`)
        // Later, as smtp-server does (after onData's callback): its continue() clears the
        // continuation after running it, so a next message read synchronously inside would hang.
        setImmediate(() => s.continue())
      })
    }
    callback?.()
  }
  const finished = new Promise<void>((resolve, reject) => {
    s.on('finish', resolve)
    s.on('error', reject)
  })
  for (const c of chunks) s.write(c)
  s.end()
  await finished
  await new Promise((r) => setImmediate(r))
  return events
}

function session(rand: () => number): string {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]
  const line = (): string => {
    const n = Math.floor(rand() * 6)
    let s = pick(['', '.', '..', '...', '.x', 'a', 'From '])
    for (let i = 0; i < n; i++) s += pick(['a', '.', ' ', '\r', '\n', 'b'])
    return s
  }
  // One DATA a session: smtp-server's continue() drops the continuation of a next message that is
  // already whole in the bytes after a terminator (a client that did not wait for 354), either reader.
  let out = pick(['MAIL FROM:<a@b.example>\r\n', 'NOOP\r\n', 'RSET\r\nNOOP\n', '']) + 'DATA\r\n'
  const lines = Math.floor(rand() * 8)
  for (let i = 0; i < lines; i++) out += line() + pick(['\r\n', '\r\n', '\n', '\r\n.\r\n', '\r\n..\r\n'])
  out += pick(['.\r\n', '\r\n.\r\n', '.\r\nQUIT\r\n', '\r\n.\r\nNOOP\r\nMAIL FROM:<c@d.example>\r\n', '..\r\n'])
  return out
}

function cut(bytes: Buffer, rand: () => number): Buffer[] {
  const chunks: Buffer[] = []
  for (let at = 0; at < bytes.length;) {
    const n = 1 + Math.floor(rand() * (rand() < 0.5 ? 4 : 64))
    chunks.push(Buffer.from(bytes.subarray(at, at + n)))
    at += n
  }
  return chunks
}

test('the native search reads DATA exactly as smtp-server does, for 3,000 random sessions in random chunks', async () => {
  for (let seed = 1; seed <= 3000; seed++) {
    const rand = prng(seed)
    const bytes = Buffer.from(session(rand), 'latin1')
    const chunks = cut(bytes, rand)
    const ours = await run(feedDataStream, chunks)
    const library = await run(libraryFeedDataStream, chunks)
    assert.deepEqual(ours, library, `seed ${seed}: ${JSON.stringify(bytes.toString('latin1'))}`)
  }
})

test('a 1 MB message with dot-stuffed lines, in one chunk and in 64 KB chunks', async () => {
  const body = Array.from({ length: 20_000 }, (_, i) => (i % 7 === 0 ? `..line ${i}` : `line ${i} ${'x'.repeat(40)}`)).join('\r\n')
  const bytes = Buffer.from(`DATA\r\n${body}\r\n.\r\nQUIT\r\n`, 'latin1')
  const whole = await run(feedDataStream, [bytes])
  const pieces: Buffer[] = []
  for (let at = 0; at < bytes.length; at += 65536) pieces.push(bytes.subarray(at, at + 65536))
  assert.deepEqual(await run(feedDataStream, pieces), whole)
  assert.deepEqual(whole, await run(libraryFeedDataStream, pieces))
  assert.equal(whole.length, 3)
  assert.equal(whole[2], 'cmd QUIT')
  assert.ok(!whole[1].includes('\\r\\n..line'), 'escape dots removed')
})
