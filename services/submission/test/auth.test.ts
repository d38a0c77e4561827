// Brute force against the real listener, from several loopback addresses.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { startTestSubmission, authOnce } from './harness.js'

const env = {
  SUBMISSION_AUTH_BAN_FAILURES: '3',
  SUBMISSION_AUTH_BAN_WINDOW: '1m',
  SUBMISSION_AUTH_BAN_TIME: '2s',
  SUBMISSION_AUTH_DELAY: '300ms',
  SUBMISSION_AUTH_DELAY_MAX: '1s',
}
const users = { 'alice@ours.example': 'alice-secret', 'bob@ours.example': 'bob-secret', 'carol@ours.example': 'carol-secret' }

test('three failures from one address ban it with 454 4.7.0, others still get in, and the ban lifts', async (t) => {
  const sub = await startTestSubmission(t, { users, env })
  const port = sub.port('submissions')
  // Each failure names another account, so no account slowdown adds up here.
  for (const [i, user] of ['alice', 'bob', 'carol'].entries()) {
    assert.equal(
      (await authOnce(port, `${user}@ours.example`, 'guess', '127.0.0.2')).reply,
      '535 5.7.8 Authentication credentials invalid',
      `failure ${i + 1}`,
    )
  }
  const banned = await authOnce(port, 'alice@ours.example', 'alice-secret', '127.0.0.2')
  assert.equal(banned.reply, '454 4.7.0 Too many failed authentications from your address, try again later', 'even the right password')
  assert.match((await authOnce(port, 'alice@ours.example', 'alice-secret', '127.0.0.3')).reply, /^235 /, 'another address is not banned')
  await sleep(2100)
  assert.match((await authOnce(port, 'alice@ours.example', 'alice-secret', '127.0.0.2')).reply, /^235 /, 'the ban has lifted')
})

test('failures against one account slow its replies down, yet its owner still gets in from elsewhere', async (t) => {
  const sub = await startTestSubmission(t, { users, env })
  const port = sub.port('submissions')
  const baseline = await authOnce(port, 'bob@ours.example', 'bob-secret', '127.0.0.4')
  assert.match(baseline.reply, /^235 /)
  // Two failures from two addresses (no ban): the next reply for bob waits 600 ms (300, doubled).
  assert.match((await authOnce(port, 'bob@ours.example', 'guess', '127.0.0.5')).reply, /^535 /)
  const second = await authOnce(port, 'bob@ours.example', 'guess', '127.0.0.6')
  assert.match(second.reply, /^535 /)
  assert.ok(second.ms >= 280, `the second failure waited ${second.ms} ms`)
  const owner = await authOnce(port, 'bob@ours.example', 'bob-secret', '127.0.0.7')
  assert.match(owner.reply, /^235 /, 'the right password is accepted')
  assert.ok(owner.ms >= 580 && owner.ms - baseline.ms >= 500, `slowed: ${owner.ms} ms against ${baseline.ms} ms`)
  const other = await authOnce(port, 'carol@ours.example', 'carol-secret', '127.0.0.5')
  assert.ok(other.ms < 300, `another account is not slowed: ${other.ms} ms`)
  const after = await authOnce(port, 'bob@ours.example', 'bob-secret', '127.0.0.7')
  assert.ok(after.ms < 300, `a success ends the slowdown: ${after.ms} ms`)
})

test('thirty AUTHs at once from one address: no more than SUBMISSION_AUTH_BAN_FAILURES passwords are checked', async (t) => {
  const sub = await startTestSubmission(t, { users, env })
  const port = sub.port('submissions')
  // A brute force in parallel: each connection's AUTH arrives before any other's failure is
  // counted. Without a count of the attempts in flight, every one of them got its password checked.
  const replies = await Promise.all(
    Array.from({ length: 30 }, (_, i) => authOnce(port, `${['alice', 'bob', 'carol'][i % 3]}@ours.example`, `guess-${i}`, '127.0.0.8')),
  )
  const checked = replies.filter((r) => r.reply.startsWith('535 ')).length
  const refused = replies.filter((r) => r.reply === '454 4.7.0 Too many failed authentications from your address, try again later').length
  assert.equal(checked, 3, `passwords checked: ${replies.map((r) => r.reply.slice(0, 3)).join(' ')}`)
  assert.equal(refused, 27)
  assert.match((await authOnce(port, 'alice@ours.example', 'alice-secret', '127.0.0.9')).reply, /^235 /, 'another address still gets in')
})
