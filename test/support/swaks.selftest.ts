// Self-test for swaks.ts (and scripted-mx.ts): run the real swaks and read its transcript.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startScriptedMx } from './scripted-mx.js'
import { startSmtpSink } from './smtp-sink.js'
import { lastReply, repliesTo, swaks, transcript } from './swaks.js'

test('swaks delivers through STARTTLS and the transcript pairs each command with its reply', async (t) => {
  const mx = await startScriptedMx({
    tls: true,
    requireTls: true,
    rcpt: { 'gone@remote.example': '550 5.1.1 No such user' },
  })
  t.after(() => mx.close())
  const out = await swaks([
    '--server',
    `127.0.0.1:${mx.port}`,
    '--tls',
    '--timeout',
    '5',
    '--from',
    'a@ours.example',
    '--to',
    'b@remote.example,gone@remote.example',
    '--helo',
    'client.test',
  ])
  assert.equal(out.code, 0, out.stderr)
  assert.match(lastReply(out.stdout, 'CONNECT') ?? '', /^220 mx\.remote\.example ESMTP/)
  assert.match(lastReply(out.stdout, 'STARTTLS') ?? '', /^220 /)
  assert.deepEqual(repliesTo(out.stdout, 'RCPT'), ['250 Accepted', '550 5.1.1 No such user'])
  assert.equal(lastReply(out.stdout, '.'), '250 Ok: queued')
  assert.ok(transcript(out.stdout).find((e) => e.command.startsWith('MAIL'))?.tls)
  assert.equal(mx.messages.length, 1)
  assert.deepEqual(mx.messages[0].to, ['b@remote.example'])
  assert.equal(mx.messages[0].tls, true)
  assert.equal(mx.messages[0].helo, 'client.test')
})

test('without STARTTLS the scripted MX refuses MAIL, swaks exits 23', async (t) => {
  const mx = await startScriptedMx({ tls: true, requireTls: true })
  t.after(() => mx.close())
  const out = await swaks(['--server', `127.0.0.1:${mx.port}`, '--timeout', '5', '--from', 'a@ours.example', '--to', 'b@remote.example'])
  assert.equal(out.code, 23)
  assert.equal(lastReply(out, 'MAIL'), '530 5.7.0 Must issue a STARTTLS command first')
  assert.equal(lastReply(out.stdout, 'RCPT'), undefined)
})

test('pipelined and suppressed-data transcripts still pair up', async (t) => {
  const sink = await startSmtpSink({ softReject: ['.'] })
  t.after(() => sink.close())
  const out = await swaks([
    '--server',
    `127.0.0.1:${sink.port}`,
    '--pipeline',
    '-n',
    '--timeout',
    '5',
    '--from',
    'a@ours.example',
    '--to',
    'b@remote.example',
  ])
  assert.equal(out.code, 26)
  const commands = transcript(out.stdout).map((e) => `${e.command.split(/[ :]/)[0]} ${e.reply.slice(0, 3)}`)
  assert.deepEqual(commands, ['CONNECT 220', 'EHLO 250', 'MAIL 250', 'RCPT 250', 'DATA 354', '. 450', 'QUIT 221'])
  assert.equal(lastReply(out.stdout, '.'), '450 4.3.0 Error: command failed')
  assert.ok(transcript(out.stdout).find((e) => e.command === '.')?.unexpected)
})

test('swaks cannot connect: exit code 2, no replies', async () => {
  const out = await swaks(['--server', '127.0.0.1:1', '--timeout', '2', '--from', 'a@b.example', '--to', 'c@d.example'])
  assert.equal(out.code, 2)
  assert.deepEqual(transcript(out.stdout), [])
})
