// Self-test for smtp-sink.ts and smtp-session.ts: what the sink answers and what it stores.
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { startSmtpSink } from './smtp-sink.js'
import { sendMail, smtpSession } from './smtp-session.js'

test('smtp-sink accepts a message and stores it as sent, dot-stuffing undone', async (t) => {
  const sink = await startSmtpSink()
  t.after(() => sink.close())
  const result = await sendMail(sink.port, {
    from: 'a@remote.example',
    to: ['b@ours.example', 'c@ours.example'],
    data: 'Subject: hi\n\n.leading dot\nbody\n',
  })
  assert.equal(result.error, undefined)
  assert.match(result.greeting ?? '', /^220 /)
  assert.match(result.ehlo ?? '', /^250-smtp-sink\n(250-.*\n)*250 /)
  assert.deepEqual(result.rcpt, ['250 2.1.5 Ok', '250 2.1.5 Ok'])
  assert.equal(result.message, '250 2.0.0 Ok')
  const [message] = await sink.waitForMessages(1)
  assert.equal(message.mailArgs, '<a@remote.example>')
  assert.deepEqual(message.rcptArgs, ['<b@ours.example>', '<c@ours.example>'])
  assert.equal(message.message, 'Subject: hi\n\n.leading dot\nbody\n')
})

test('pipelined replies come back one per read', async (t) => {
  const sink = await startSmtpSink()
  t.after(() => sink.close())
  const s = await smtpSession(sink.port)
  t.after(() => s.close())
  s.write('EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nRSET\r\n')
  assert.match(await s.read(), /^250-smtp-sink/)
  assert.equal(await s.read(), '250 2.1.0 Ok')
  assert.equal(await s.read(), '250 2.1.5 Ok')
  assert.equal(await s.read(), '250 2.1.0 Ok') // smtp-sink's RSET reply
  assert.equal(await s.send('QUIT'), '221 Bye')
  await s.closed
})

test('hardReject RCPT answers every recipient with the hard reply', async (t) => {
  const sink = await startSmtpSink({ hardReject: ['RCPT'], hardReply: '550 5.1.1 No such user' })
  t.after(() => sink.close())
  const result = await sendMail(sink.port, { from: 'a@b.example', to: ['x@y.example'], data: 'x\n' })
  assert.deepEqual(result.rcpt, ['550 5.1.1 No such user'])
  assert.equal(result.data, undefined)
  assert.equal(result.quit, '221 Bye')
})

test('softReject on "." tempfails the message after DATA', async (t) => {
  const sink = await startSmtpSink({ softReject: ['.'] })
  t.after(() => sink.close())
  const result = await sendMail(sink.port, { from: 'a@b.example', to: ['x@y.example'], data: 'x\n' })
  assert.match(result.data ?? '', /^354 /)
  assert.equal(result.message, '450 4.3.0 Error: command failed')
})

test('shutdown MAIL answers 421 and hangs up', async (t) => {
  const sink = await startSmtpSink({ shutdown: ['MAIL'] })
  t.after(() => sink.close())
  const s = await smtpSession(sink.port)
  t.after(() => s.close())
  await s.send('EHLO x')
  assert.match(await s.send('MAIL FROM:<a@b.example>'), /^421 /)
  await s.closed
  await assert.rejects(s.send('RSET'), /closed/)
})

test('noGreeting accepts the connection and never says anything', async (t) => {
  const sink = await startSmtpSink({ noGreeting: true })
  t.after(() => sink.close())
  await assert.rejects(smtpSession(sink.port, { timeoutMs: 1000 }), /no SMTP reply within 1000 ms/)
  const received = await new Promise<number>((resolve) => {
    const socket = connect({ port: sink.port, host: '127.0.0.1' })
    let bytes = 0
    socket.on('data', (chunk) => (bytes += chunk.length))
    setTimeout(() => {
      socket.destroy()
      resolve(bytes)
    }, 1000)
  })
  assert.equal(received, 0)
})

test('a whole transaction is dumped complete; one the sink is stopped in the middle of, after 12 KB of DATA, is not', async (t) => {
  const sink = await startSmtpSink()
  t.after(() => sink.close())
  const whole = await sendMail(sink.port, { from: 'a@b.example', to: ['x@y.example'], data: 'Subject: whole\n\nbody\n' })
  assert.equal(whole.message, '250 2.0.0 Ok')
  const s = await smtpSession(sink.port)
  t.after(() => s.close())
  assert.match(await s.send('EHLO x'), /^250-/)
  assert.equal(await s.send('MAIL FROM:<a@b.example>'), '250 2.1.0 Ok')
  assert.equal(await s.send('RCPT TO:<x@y.example>'), '250 2.1.5 Ok')
  assert.match(await s.send('DATA'), /^354 /)
  s.write(`Subject: cut\r\n\r\n${'0123456789'.repeat(6).concat('\r\n').repeat(200)}half a li`)
  await new Promise((resolve) => setTimeout(resolve, 300))
  await sink.stop()
  const dumps = await sink.received()
  assert.deepEqual(
    dumps.map((d) => [d.complete, /^Subject: (\w+)/.exec(d.message)?.[1]]),
    [
      [true, 'whole'],
      [false, 'cut'],
    ],
  )
})
