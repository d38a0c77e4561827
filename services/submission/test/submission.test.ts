// The submission listeners driven over real sockets: TLS before AUTH, AUTH before MAIL, and what
// an accepted message looks like in the spool.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestSubmission, plain } from './harness.js'

test('AUTH is neither offered nor accepted before STARTTLS, and MAIL there gets 530 5.7.0', async (t) => {
  const sub = await startTestSubmission(t)
  const s = await sub.session('submission')
  const ehlo = await s.send('EHLO client.example')
  assert.match(ehlo, /STARTTLS/)
  assert.doesNotMatch(ehlo, /AUTH/)
  assert.match(await s.send(`AUTH PLAIN ${plain('alice@ours.example', 'alice-secret')}`), /^5\d\d /)
  assert.equal(await s.send('MAIL FROM:<alice@ours.example>'), '530 5.7.0 Must issue a STARTTLS command first')
  assert.match(await s.startTls(), /^220 /)
  const secureEhlo = await s.send('EHLO client.example')
  assert.match(secureEhlo, /AUTH PLAIN LOGIN/)
  assert.doesNotMatch(secureEhlo, /STARTTLS/)
})

test('MAIL before AUTH is refused with 530 5.7.0 under TLS', async (t) => {
  const sub = await startTestSubmission(t)
  const s = await sub.session('submission')
  await s.send('EHLO client.example')
  await s.startTls()
  await s.send('EHLO client.example')
  assert.equal(await s.send('MAIL FROM:<alice@ours.example>'), '530 5.7.0 Authentication required')
})

test('a wrong password gets 535 5.7.8 and the right one 235', async (t) => {
  const sub = await startTestSubmission(t)
  const s = await sub.session('submission')
  await s.send('EHLO client.example')
  await s.startTls()
  await s.send('EHLO client.example')
  assert.equal(await s.send(`AUTH PLAIN ${plain('alice@ours.example', 'wrong')}`), '535 5.7.8 Authentication credentials invalid')
  assert.match(await s.send(`AUTH PLAIN ${plain('alice', 'alice-secret')}`), /^235 /)
})

test('the envelope keeps the user and the DSN parameters; Received says ESMTPSA and names nobody, not even the client', async (t) => {
  const sub = await startTestSubmission(t)
  const s = await sub.session('submission')
  await s.send('EHLO client.example')
  await s.startTls()
  await s.send('EHLO client.example')
  assert.match(await s.send(`AUTH PLAIN ${plain('alice@ours.example', 'alice-secret')}`), /^235 /)
  assert.match(await s.send('MAIL FROM:<alice@ours.example> RET=HDRS ENVID=QQ+2B314'), /^250 /)
  assert.match(await s.send('RCPT TO:<bob@remote.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+2Bx@remote.example'), /^250 /)
  assert.match(await s.send('RCPT TO:<carol@remote.example>'), /^250 /)
  assert.match(await s.send('DATA'), /^354 /)
  const reply = await s.sendRaw('From: Alice <alice@ours.example>\r\nSubject: hi\r\n\r\nbody\r\n.\r\n')
  const id = /queued as ([0-9A-F]+)/.exec(reply)?.[1]
  assert.ok(id, reply)
  const [entry] = await sub.spool.list()
  assert.equal(entry.id, id)
  const env = entry.envelope
  assert.equal(env.source, 'submission')
  assert.equal(env.client.user, 'alice@ours.example')
  assert.equal(env.client.tls, true)
  assert.deepEqual(env.dsn, { ret: 'HDRS', envid: 'QQ+314' })
  assert.deepEqual(
    env.recipients.map((r) => [r.address, r.original, r.notify, r.orcpt]),
    [
      ['bob@remote.example', 'Bob+x@remote.example', ['SUCCESS', 'FAILURE'], 'rfc822;Bob+x@remote.example'],
      ['carol@remote.example', 'carol@remote.example', undefined, undefined],
    ],
  )
  // SUBMISSION_HIDE_CLIENT (on by default): neither the client's address nor its EHLO name.
  assert.match(env.prepend ?? '', /^Received: by mx\.ours\.example \(Facteur, from an authenticated client\) with ESMTPSA id /)
  assert.doesNotMatch(env.prepend ?? '', /alice|bob|carol|for <|127\.0\.0\.1|client\.example/)
  assert.equal(env.client.ip, '127.0.0.1', 'the envelope (the logs, mailctl queue show) still has it')
  const data = (await sub.spool.content(id))!
  assert.match(
    data.toString(),
    /^From: Alice <alice@ours\.example>\r\nSubject: hi\r\nDate: .+\r\nMessage-ID: <[^>]+@mx\.ours\.example>\r\n\r\nbody\r\n$/,
  )
})

test('SUBMISSION_HIDE_CLIENT=false: Received names the client as the MX does', async (t) => {
  const sub = await startTestSubmission(t, { env: { SUBMISSION_HIDE_CLIENT: 'false' } })
  const s = await sub.session('submission')
  await s.send('EHLO client.example')
  await s.startTls()
  await s.send('EHLO client.example')
  assert.match(await s.send(`AUTH PLAIN ${plain('alice@ours.example', 'alice-secret')}`), /^235 /)
  assert.match(await s.send('MAIL FROM:<alice@ours.example>'), /^250 /)
  assert.match(await s.send('RCPT TO:<bob@remote.example>'), /^250 /)
  assert.match(await s.send('DATA'), /^354 /)
  assert.match(await s.sendRaw('From: alice@ours.example\r\nX-Originating-IP: [198.51.100.7]\r\n\r\nbody\r\n.\r\n'), /^250 /)
  const [entry] = await sub.spool.list()
  assert.match(
    entry.envelope.prepend ?? '',
    /^Received: from client\.example \(\[127\.0\.0\.1\]\)\r\n\tby mx\.ours\.example \(Facteur\) with ESMTPSA id /,
  )
  assert.match((await sub.spool.content(entry.id))!.toString(), /^X-Originating-IP: \[198\.51\.100\.7\]\r$/m)
})
