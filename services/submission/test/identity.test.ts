// Who an authenticated user may send as, and the per-user limits, against the real listener.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestSubmission } from './harness.js'

const users = { 'alice@ours.example': 'alice-secret', 'bob@ours.example': 'bob-secret' }
const aliases = [
  'sales@ours.example: alice@ours.example',
  'team@ours.example: alice@ours.example, bob@ours.example',
  'bobs@ours.example: bob@ours.example',
].join('\n')

test('MAIL FROM must be the user, a sub-address of theirs, or an alias that delivers to them: else 553 5.7.1', async (t) => {
  const sub = await startTestSubmission(t, { users, aliases })
  const s = await sub.authenticated('alice@ours.example', 'alice-secret')
  const mail = async (from: string): Promise<string> => {
    const reply = await s.send(`MAIL FROM:<${from}>`)
    await s.send('RSET')
    return reply
  }
  for (const own of [
    'alice@ours.example',
    'Alice@OURS.example',
    'alice+lists@ours.example',
    'sales@ours.example',
    'team@ours.example',
    '',
  ]) {
    assert.match(await mail(own), /^250 /, own)
  }
  for (const other of ['bob@ours.example', 'bobs@ours.example', 'alice@remote.example', 'postmaster@ours.example', 'nobody@ours.example']) {
    assert.equal(await mail(other), '553 5.7.1 Sender address rejected: not owned by the authenticated user', other)
  }
})

test("a From: header naming someone else's address is refused with 553 5.7.1 after DATA", async (t) => {
  const sub = await startTestSubmission(t, { users, aliases })
  const s = await sub.authenticated('alice@ours.example', 'alice-secret')
  const send = async (from: string): Promise<string> => {
    await s.send('MAIL FROM:<alice@ours.example>')
    await s.send('RCPT TO:<bob@ours.example>')
    await s.send('DATA')
    return s.sendRaw(`From: ${from}\r\nSubject: x\r\n\r\nbody\r\n.\r\n`)
  }
  const refused = '553 5.7.1 From: header address rejected: not owned by the authenticated user'
  assert.equal(await send('Bob <bob@ours.example>'), refused)
  assert.equal(await send('"alice@ours.example" <bob@ours.example>'), refused, 'the display name does not count')
  assert.equal(await send('alice@ours.example, bob@ours.example'), refused, 'every author must be the user')
  assert.equal(await send('undisclosed-recipients:;'), refused, 'a From: naming nobody')
  assert.match(await send('Sales <sales@ours.example>'), /^250 /)
  assert.match(await send('=?utf-8?q?Alice_L=C3=A9?= <ALICE@ours.example>'), /^250 /)
  assert.equal((await sub.spool.list()).length, 2, 'only the accepted messages are queued')
})

test('messages past the hourly limit get 450 4.7.1 at MAIL, recipients past the limit 450 4.7.1 at RCPT', async (t) => {
  const sub = await startTestSubmission(t, { users, aliases, env: { SUBMISSION_RATE_MESSAGES: '2', SUBMISSION_MAX_RECIPIENTS: '3' } })
  const s = await sub.authenticated('alice@ours.example', 'alice-secret')
  assert.match(await s.send('MAIL FROM:<alice@ours.example>'), /^250 /)
  for (const r of ['a', 'b', 'c']) assert.match(await s.send(`RCPT TO:<${r}@remote.example>`), /^250 /)
  assert.equal(await s.send('RCPT TO:<d@remote.example>'), '450 4.7.1 Too many recipients for one message, send the rest in another')
  assert.match(await s.send('DATA'), /^354 /)
  assert.match(await s.sendRaw('Subject: 1\r\n\r\nx\r\n.\r\n'), /^250 /)
  assert.match(await s.send('MAIL FROM:<alice@ours.example>'), /^250 /)
  await s.send('RCPT TO:<a@remote.example>')
  await s.send('DATA')
  assert.match(await s.sendRaw('Subject: 2\r\n\r\nx\r\n.\r\n'), /^250 /)
  assert.equal(await s.send('MAIL FROM:<alice@ours.example>'), '450 4.7.1 Message rate limit reached, try again later')
  const bob = await sub.authenticated('bob@ours.example', 'bob-secret')
  assert.match(await bob.send('MAIL FROM:<bob@ours.example>'), /^250 /, 'the limit is per user')
})

test('unknown local recipients are refused at once; remote ones are accepted', async (t) => {
  const sub = await startTestSubmission(t, { users, aliases })
  const s = await sub.authenticated('alice@ours.example', 'alice-secret')
  await s.send('MAIL FROM:<alice@ours.example>')
  assert.equal(await s.send('RCPT TO:<nobody@ours.example>'), '550 5.1.1 No such user here')
  assert.equal(await s.send('RCPT TO:<bob%remote.example@ours.example>'), '554 5.7.1 Relay access denied')
  assert.match(await s.send('RCPT TO:<someone@remote.example>'), /^250 /)
  assert.match(await s.send('RCPT TO:<team@ours.example>'), /^250 /)
  await s.send('DATA')
  assert.match(await s.sendRaw('Subject: x\r\n\r\nx\r\n.\r\n'), /^250 /)
  const [entry] = await sub.spool.list()
  assert.deepEqual(
    entry.envelope.recipients.map((r) => [r.address, r.original]),
    [
      ['someone@remote.example', 'someone@remote.example'],
      ['alice@ours.example', 'team@ours.example'],
      ['bob@ours.example', 'team@ours.example'],
    ],
  )
})
