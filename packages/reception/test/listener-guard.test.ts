// The listener guards on a real smtp-server listener (loopback, port 0): deadlines against slow
// clients (a trickled command, an idle session, a slow DATA, an implicit TLS handshake that never
// ends), the clock stopped while the client waits for us, and exactly one enhanced status code on
// every reply (RFC 2034, RFC 3463).
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import net from 'node:net'
import tls from 'node:tls'
import os from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import { SMTPServer, type SMTPServerOptions } from 'smtp-server'
import { SmtpError } from '@facteur/smtp-error'
import { openCertificates } from '@facteur/certs'
import { guardListener, type DeadlineLimits, type ErrorLimits, type SessionTimeout } from '@facteur/reception'
import { smtpSession } from '../../../test/support/smtp-session.js'
import { waitFor } from '../../../test/support/queue.js'

const TIMEOUT_MS = 1000
const TIMED_OUT = '421 4.4.2 mx.test.example Error: timeout exceeded'

async function listen(
  t: TestContext,
  options: SMTPServerOptions = {},
  limits: DeadlineLimits & Partial<ErrorLimits> = { timeoutMs: TIMEOUT_MS, minDataRate: 100 },
): Promise<{ port: number; timeouts: SessionTimeout[]; server: SMTPServer }> {
  const timeouts: SessionTimeout[] = []
  const server = new SMTPServer({
    name: 'mx.test.example',
    hideENHANCEDSTATUSCODES: false,
    disabledCommands: ['AUTH', 'STARTTLS'],
    socketTimeout: 60_000,
    disableReverseLookup: true,
    logger: false,
    onRcptTo(address, _session, cb) {
      if (address.address.startsWith('nobody@')) return cb(new SmtpError(550, '1.1', 'No such user here').toServerError())
      cb()
    },
    onData(stream, _session, cb) {
      stream.resume()
      stream.once('end', () => cb(null, '2.0.0 Ok: queued as X'))
    },
    ...options,
  })
  server.on('error', () => undefined) // a handshake cut off is reported here; the services log it
  guardListener(server, limits, (x) => timeouts.push(x))
  server.listen(0, '127.0.0.1')
  await once(server.server, 'listening')
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { port: (server.server.address() as net.AddressInfo).port, timeouts, server }
}

/** Writes `text` a byte every `everyMs` until the server closes; resolves with all it answered. */
async function trickle(
  port: number,
  text: string,
  everyMs: number,
  maxMs = 30 * TIMEOUT_MS,
): Promise<{ replies: string; closedByServer: boolean }> {
  const socket = net.connect({ host: '127.0.0.1', port })
  let replies = ''
  socket.on('data', (d: Buffer) => (replies += d.toString('latin1')))
  // A server that cuts a connection with bytes of ours unread resets it: an 'error' (ECONNRESET),
  // then 'close'. Both are the server closing (events.once would reject on the error).
  socket.on('error', () => undefined)
  const closed = new Promise<boolean>((resolve) => socket.once('close', () => resolve(true)))
  let i = 0
  const timer = setInterval(() => socket.write(text[i++ % text.length]), everyMs)
  const gaveUp = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), maxMs).unref())
  try {
    const closedByServer = await Promise.race([closed, gaveUp])
    return { replies, closedByServer }
  } finally {
    clearInterval(timer)
    socket.destroy()
  }
}

test('a command trickled a byte at a time is closed with 421 4.4.2 once SMTP_TIMEOUT has passed', async (t) => {
  const { port, timeouts } = await listen(t)
  const r = await trickle(port, 'EHLO trickle.example and on and on ', 100)
  assert.ok(r.closedByServer, 'the server closed the connection')
  assert.match(r.replies, /^220 /)
  assert.equal(r.replies.trimEnd().split('\r\n').at(-1), TIMED_OUT)
  assert.equal(timeouts.length, 1)
  assert.equal(timeouts[0].phase, 'command')
})

test('an idle session is closed with the same 421 4.4.2', async (t) => {
  const { port } = await listen(t)
  const s = await smtpSession(port, { timeoutMs: 30 * TIMEOUT_MS })
  assert.match(await s.send('EHLO idle.example'), /^250-mx\.test\.example/)
  assert.equal(await s.read(), TIMED_OUT)
  await s.closed
})

test('a message trickled below SMTP_MIN_DATA_RATE is closed in DATA; one sent above it is accepted after the timeout', async (t) => {
  const { port, timeouts } = await listen(t)
  const slow = await smtpSession(port, { timeoutMs: 30 * TIMEOUT_MS })
  await slow.send('EHLO slow.example')
  await slow.send('MAIL FROM:<a@remote.example>')
  await slow.send('RCPT TO:<b@ours.example>')
  assert.match(await slow.send('DATA'), /^354 /)
  // 10 bytes a second against a minimum of 100.
  const timer = setInterval(() => slow.write('x'), 100)
  t.after(() => clearInterval(timer))
  assert.equal(await slow.read(), TIMED_OUT)
  clearInterval(timer)
  assert.equal(timeouts.at(-1)?.phase, 'data')

  const steady = await smtpSession(port, { timeoutMs: 30 * TIMEOUT_MS })
  await steady.send('EHLO steady.example')
  await steady.send('MAIL FROM:<a@remote.example>')
  await steady.send('RCPT TO:<b@ours.example>')
  assert.match(await steady.send('DATA'), /^354 /)
  // 500 bytes a second, for three timeouts' worth: each byte buys 1/100 s.
  steady.write('Subject: steady\r\n\r\n')
  for (let i = 0; i < 15; i++) {
    steady.write('y'.repeat(98) + '\r\n')
    await new Promise((r) => setTimeout(r, 200))
  }
  assert.equal(await steady.sendRaw('.\r\n'), '250 2.0.0 Ok: queued as X')
  await steady.close()
})

test('the clock stops while the client waits for a handler', async (t) => {
  const { port, timeouts } = await listen(t, {
    onMailFrom(_address, _session, cb) {
      setTimeout(() => cb(), 3 * TIMEOUT_MS)
    },
  })
  const s = await smtpSession(port, { timeoutMs: 30 * TIMEOUT_MS })
  await s.send('EHLO patient.example')
  assert.equal(await s.send('MAIL FROM:<a@remote.example>'), '250 2.1.0 Accepted')
  assert.equal(await s.send('QUIT'), '221 2.0.0 Bye')
  assert.deepEqual(timeouts, [])
})

test('an implicit TLS handshake trickled a byte at a time is cut off', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-guard-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  const certs = await openCertificates({ configDir: dir, hostname: 'mx.test.example' })
  const { key, cert } = certs.current()
  const { port, timeouts } = await listen(t, { secure: true, key, cert })
  // The start of a TLS record (handshake, TLS 1.0 framing), never finished.
  const r = await trickle(port, '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + 'r'.repeat(200), 100)
  assert.ok(r.closedByServer, 'the server closed the connection')
  assert.equal(timeouts[0]?.phase, 'handshake')
})

test('a STARTTLS handshake that never completes is cut off', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-guard-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  const certs = await openCertificates({ configDir: dir, hostname: 'mx.test.example' })
  const { key, cert } = certs.current()
  const { port, timeouts } = await listen(t, { disabledCommands: ['AUTH'], key, cert })
  const s = await smtpSession(port, { timeoutMs: 30 * TIMEOUT_MS })
  await s.send('EHLO tls.example')
  assert.equal(await s.send('STARTTLS'), '220 2.0.0 Ready to start TLS')
  // The start of a ClientHello, a byte every 100 ms, never finished.
  const hello = '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03'
  let i = 0
  const timer = setInterval(() => s.write(Buffer.from([hello.charCodeAt(i++ % hello.length)])), 100)
  t.after(() => clearInterval(timer))
  await s.closed
  clearInterval(timer)
  assert.equal(timeouts.length, 1)
})

test('a session that keeps talking outlives SMTP_TIMEOUT, on an implicit TLS listener too', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-guard-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  const certs = await openCertificates({ configDir: dir, hostname: 'mx.test.example' })
  const { key, cert } = certs.current()
  for (const secure of [false, true]) {
    const { port, timeouts } = await listen(t, { secure, key, cert })
    const socket = secure ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }) : net.connect({ host: '127.0.0.1', port })
    let got = ''
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')))
    socket.on('error', () => undefined)
    // A NOOP every half timeout, for three timeouts.
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, TIMEOUT_MS / 2))
      socket.write('NOOP\r\n')
    }
    socket.write('QUIT\r\n')
    await once(socket, 'close')
    assert.match(got, /\r\n221 2\.0\.0 Bye\r\n$/, `secure: ${secure}`)
    assert.deepEqual(timeouts, [])
  }
})

test('every reply but the greeting and EHLO carries one enhanced status code, ours and smtp-server’s alike', async (t) => {
  const { port } = await listen(t)
  const s = await smtpSession(port)
  assert.match(s.greeting, /^220 mx\.test\.example ESMTP/)
  assert.match(await s.send('EHLO codes.example'), /^250[ -]ENHANCEDSTATUSCODES$/m)
  const replies = [
    await s.send('FROB'),
    await s.send('MAIL FROM:<bad'),
    await s.send('MAIL FROM:<a@remote.example>'),
    await s.send('RCPT TO:<nobody@ours.example>'),
    await s.send('RCPT TO:<b@ours.example>'),
    await s.send('VRFY b'),
    await s.send('RSET'),
    await s.send('NOOP'),
  ]
  assert.deepEqual(
    replies.map((r) => r.slice(0, 10)),
    ['500 5.5.2 ', '501 5.1.7 ', '250 2.1.0 ', '550 5.1.1 ', '250 2.1.5 ', '252 2.1.5 ', '250 2.0.0 ', '250 2.0.0 '],
  )
  assert.equal(replies[3], '550 5.1.1 No such user here')
  await s.close()
})

test('after QUIT the server closes the connection at once, whether the client keeps its side open or resets it', async (t) => {
  const { port, server } = await listen(t)
  const connections = (): Promise<number> =>
    new Promise((resolve, reject) => server.server.getConnections((err, n) => (err ? reject(err) : resolve(n))))
  // A client that reads the 221 and never closes: the 221, then the server's FIN.
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  let got = ''
  socket.on('data', (c: Buffer) => (got += c.toString()))
  await once(socket, 'data')
  socket.write('QUIT\r\n')
  await once(socket, 'end')
  assert.match(got, /^220 [^\r]*\r\n221 2\.0\.0 Bye\r\n$/)
  // smtp-server alone would hold the half-closed socket for up to its HALF_CLOSE_TIMEOUT (5 s):
  // 3 s tells the two apart, with room for a loaded machine.
  await waitFor('no connection left', async () => (await connections()) === 0, { timeoutMs: 3000 })
  socket.destroy()
  // A client that sends QUIT and resets at once (as smtp-source does): nothing left open either.
  const rude = net.connect({ host: '127.0.0.1', port })
  await once(rude, 'data')
  rude.write('QUIT\r\n', () => rude.resetAndDestroy())
  await waitFor('no connection left', async () => (await connections()) === 0, { timeoutMs: 3000 })
})

test('the 421 at the client limit carries 4.3.2', async (t) => {
  const { port } = await listen(t, { maxClients: 1 })
  const first = await smtpSession(port)
  const second = await smtpSession(port).then(
    (s) => s.greeting,
    (e: Error) => e.message,
  )
  assert.match(second, /^421 4\.3\.2 mx\.test\.example Too many connected clients/)
  await first.close()
})

const TOO_MANY_ERRORS = '421 4.7.0 mx.test.example Error: too many errors'
/** Every name that starts with "nobody" is unknown: a harvest's guesses. */
const guessedNames: SMTPServerOptions = {
  onRcptTo(address, _session, cb) {
    if (address.address.startsWith('nobody')) return cb(new SmtpError(550, '1.1', 'No such user here').toServerError())
    cb()
  },
}

test('past SMTP_SOFT_ERROR_LIMIT each command waits SMTP_ERROR_SLEEP; at SMTP_HARD_ERROR_LIMIT 421 4.7.0 closes the session', async (t) => {
  const sleepMs = 1000
  const { port } = await listen(t, guessedNames, {
    timeoutMs: 10_000,
    minDataRate: 100,
    softErrorLimit: 2,
    hardErrorLimit: 4,
    errorSleepMs: sleepMs,
  })
  const s = await smtpSession(port)
  await s.send('EHLO harvest.example')
  await s.send('MAIL FROM:<a@remote.example>')
  const timed = async (line: string): Promise<{ reply: string; ms: number }> => {
    const t0 = performance.now()
    const reply = await s.send(line)
    return { reply, ms: performance.now() - t0 }
  }
  const guesses = [await timed('RCPT TO:<nobody1@ours.example>'), await timed('RCPT TO:<nobody2@ours.example>')]
  // Two errors made: the next commands wait, in order, a pipelined batch included.
  s.write('RCPT TO:<b@ours.example>\r\nNOOP\r\n')
  const t0 = performance.now()
  const pipelined = [await s.read(), await s.read()]
  const pipelinedMs = performance.now() - t0
  const third = await timed('RCPT TO:<nobody3@ours.example>')
  const fourth = await timed('RCPT TO:<nobody4@ours.example>')
  const closing = await s.read()
  await s.closed
  assert.deepEqual(
    guesses.map((g) => g.reply),
    ['550 5.1.1 No such user here', '550 5.1.1 No such user here'],
  )
  for (const g of guesses) assert.ok(g.ms < sleepMs, `before the soft limit: ${g.ms} ms`)
  assert.deepEqual(
    pipelined.map((r) => r.slice(0, 9)),
    ['250 2.1.5', '250 2.0.0'],
  )
  assert.ok(pipelinedMs >= 2 * sleepMs * 0.9, `two commands held back: ${pipelinedMs} ms`)
  assert.equal(third.reply, '550 5.1.1 No such user here')
  assert.ok(third.ms >= sleepMs * 0.9, `held back: ${third.ms} ms`)
  assert.equal(fourth.reply, '550 5.1.1 No such user here')
  assert.equal(closing, TOO_MANY_ERRORS)
})

test('a message taken starts the error count again', async (t) => {
  const { port } = await listen(t, guessedNames, {
    timeoutMs: 10_000,
    minDataRate: 100,
    softErrorLimit: 0,
    hardErrorLimit: 3,
    errorSleepMs: 0,
  })
  const s = await smtpSession(port)
  await s.send('EHLO sender.example')
  const replies: string[] = []
  for (const round of [1, 2]) {
    replies.push(await s.send('MAIL FROM:<a@remote.example>'))
    replies.push(await s.send(`RCPT TO:<nobody${round}a@ours.example>`))
    replies.push(await s.send(`RCPT TO:<nobody${round}b@ours.example>`))
    replies.push(await s.send('RCPT TO:<b@ours.example>'))
    replies.push(await s.send('DATA'))
    replies.push(await s.sendRaw('Subject: x\r\n\r\nbody\r\n.\r\n'))
  }
  // Two errors since the last message, then a third: the limit.
  replies.push(await s.send('MAIL FROM:<a@remote.example>'))
  replies.push(await s.send('RCPT TO:<nobody3a@ours.example>'))
  replies.push(await s.send('RCPT TO:<nobody3b@ours.example>'))
  assert.equal(await s.send('RCPT TO:<nobody3c@ours.example>'), '550 5.1.1 No such user here')
  assert.equal(await s.read(), TOO_MANY_ERRORS)
  assert.deepEqual(
    replies.map((r) => r.slice(0, 3)),
    ['250', '550', '550', '250', '354', '250', '250', '550', '550', '250', '354', '250', '250', '550', '550'],
  )
})
