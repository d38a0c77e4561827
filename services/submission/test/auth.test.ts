// Brute force against the real listener, from several loopback addresses.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import net from 'node:net'
import { once } from 'node:events'
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

// 127.0.0.9 plays the address every client behind a proxy shows: Docker's bridge gateway (userland
// proxy), or a load balancer's listed in SHARED_CLIENT_ADDRESSES.
for (const [behind, setup] of [
  ["Docker's userland proxy (every client from its gateway)", { gateway: '127.0.0.9' }],
  ['a balancer in SHARED_CLIENT_ADDRESSES', { env: { SHARED_CLIENT_ADDRESSES: '127.0.0.0/29, 127.0.0.9' } }],
] as const)
  test(`behind ${behind} a stranger's failures ban the account they aim at, not everyone`, async (t) => {
    const gateway = '127.0.0.9'
    const sub = await startTestSubmission(t, {
      users,
      env: { ...env, SMTP_MAX_CLIENTS_PER_IP: '2', ...('env' in setup ? setup.env : {}) },
      gateway: 'gateway' in setup ? setup.gateway : undefined,
    })
    const port = sub.port('submissions')
    // Guesses at names nobody has: with the gateway counted as one client, these banned every user.
    for (const name of ['admin', 'info', 'test', 'root'])
      assert.equal((await authOnce(port, `${name}@ours.example`, 'guess', gateway)).reply, '535 5.7.8 Authentication credentials invalid')
    assert.match((await authOnce(port, 'alice@ours.example', 'alice-secret', gateway)).reply, /^235 /, 'alice still gets in')
    // Guesses at bob's password: bob is banned from the gateway, the others are not.
    for (let i = 0; i < 3; i++) assert.match((await authOnce(port, 'bob@ours.example', `guess-${i}`, gateway)).reply, /^535 /)
    assert.equal(
      (await authOnce(port, 'bob@ours.example', 'bob-secret', gateway)).reply,
      '454 4.7.0 Too many failed authentications for this account from your address, try again later',
    )
    assert.match((await authOnce(port, 'carol@ours.example', 'carol-secret', gateway)).reply, /^235 /, 'carol still gets in')
    assert.match((await authOnce(port, 'bob@ours.example', 'bob-secret', '127.0.0.10')).reply, /^235 /, 'bob from his own address')
    // Nor are the gateway's sessions one client's: three at once past SMTP_MAX_CLIENTS_PER_IP=2.
    const sockets: net.Socket[] = []
    const greet = async (localAddress: string): Promise<string> => {
      const s = net.connect({ host: '127.0.0.1', port: sub.port('submission'), localAddress })
      sockets.push(s)
      return String((await once(s, 'data'))[0]).slice(0, 9)
    }
    try {
      assert.deepEqual(await Promise.all([1, 2, 3].map(() => greet(gateway))), ['220 mx.ou', '220 mx.ou', '220 mx.ou'])
      const fromOne = await Promise.all([1, 2, 3].map(() => greet('127.0.0.11')))
      assert.deepEqual(fromOne.sort(), ['220 mx.ou', '220 mx.ou', '421 4.7.0'], 'another address is counted')
    } finally {
      for (const s of sockets) s.destroy()
    }
  })
