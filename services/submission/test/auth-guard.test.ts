// The brute-force bookkeeping on its own, with a clock the test moves.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AuthGuard } from '../src/policy/auth-guard.js'

const settings = { banFailures: 3, banWindowMs: 60_000, banTimeMs: 120_000, delayMs: 100, delayMaxMs: 1000 }

test('an address is banned at its Nth failure within the window, until the ban time has passed', () => {
  const g = new AuthGuard(settings)
  assert.equal(g.failed('192.0.2.1', 'a@x.example', 0), false)
  assert.equal(g.failed('192.0.2.1', 'b@x.example', 1000), false)
  assert.equal(g.bannedUntil('192.0.2.1', 'u@x.example', 1000), null)
  assert.equal(g.failed('192.0.2.1', 'c@x.example', 2000), true)
  assert.equal(g.bannedUntil('192.0.2.1', 'u@x.example', 2001), 122_000)
  assert.equal(g.bannedUntil('192.0.2.2', 'u@x.example', 2001), null, 'another address is not banned')
  assert.equal(g.bannedUntil('192.0.2.1', 'u@x.example', 122_000), null)
  assert.equal(g.failed('192.0.2.1', 'a@x.example', 122_001), false, 'the count starts again after a ban')
})

test('failures spread wider than the window never ban', () => {
  const g = new AuthGuard(settings)
  for (let i = 0; i < 10; i++) assert.equal(g.failed('192.0.2.1', 'a@x.example', i * 30_001), false)
})

test("an account's replies slow down, doubling per failure up to the cap; a success ends it", () => {
  const g = new AuthGuard(settings)
  assert.equal(g.delayFor('a@x.example', 0), 0)
  const delays = [1, 2, 3, 4, 5, 6].map((i) => {
    g.failed(`192.0.2.${i}`, 'a@x.example', i)
    return g.delayFor('a@x.example', i)
  })
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000])
  assert.equal(g.delayFor('b@x.example', 10), 0, 'other accounts are not slowed')
  assert.equal(g.delayFor('a@x.example', 60_007), 0, 'failures older than the window are forgotten')
  g.failed('192.0.2.9', 'a@x.example', 70_000)
  g.succeeded('a@x.example')
  assert.equal(g.delayFor('a@x.example', 70_001), 0)
})

test('memory stays bounded: past the bound the oldest addresses are forgotten', () => {
  const g = new AuthGuard({ ...settings, banFailures: 2 }, { maxTracked: 100 })
  for (let i = 0; i < 1000; i++) g.failed(`10.0.${i >> 8}.${i & 255}`, `u${i}@x.example`, i)
  g.failed('10.0.3.231', 'u@x.example', 2000)
  assert.notEqual(g.bannedUntil('10.0.3.231', 'u@x.example', 2001), null, 'a recent address is remembered')
  g.failed('10.0.0.0', 'u@x.example', 2000)
  assert.equal(g.bannedUntil('10.0.0.0', 'u@x.example', 2001), null, 'the first one was forgotten')
})

test('attempts under way count against the ban: the one past the limit waits, then goes on or is refused', async () => {
  const g = new AuthGuard(settings)
  const clock = (): number => 5000
  const settled = (p: Promise<unknown>): Promise<boolean> =>
    Promise.race([p.then(() => true), new Promise<boolean>((r) => setImmediate(() => r(false)))])
  // A client of many users, none failing: three at once, the fourth waits for one to end.
  const ends = await Promise.all([1, 2, 3].map(() => g.admit('192.0.2.1', 'u@x.example', clock)))
  const fourth = g.admit('192.0.2.1', 'u@x.example', clock)
  assert.equal(await settled(fourth), false, 'the fourth waits')
  ends[0]!()
  ends[0]!() // ending twice frees one place only
  const end4 = await fourth
  assert.ok(end4, 'admitted once an attempt succeeded')
  const fifth = g.admit('192.0.2.1', 'u@x.example', clock)
  assert.equal(await settled(fifth), false, 'still three under way')
  // A brute force: the three under way fail; the one waiting is refused, its password never checked.
  const attacker = [g.failed('192.0.2.1', 'a@x.example', 5000), g.failed('192.0.2.1', 'b@x.example', 5000)]
  assert.deepEqual(attacker, [false, false])
  const waiting = g.admit('192.0.2.1', 'u@x.example', clock)
  ends[1]!()
  assert.equal(await settled(waiting), false, 'two failures and two under way: still waiting')
  assert.equal(g.failed('192.0.2.1', 'c@x.example', 5000), true)
  ends[2]!()
  assert.equal(await waiting, null, 'banned while it waited')
  assert.equal(await fifth, null)
  assert.equal(await g.admit('192.0.2.2', 'u@x.example', clock).then((e) => typeof e), 'function', 'another address is not held up')
  end4!()
})

test('at an address that stands for many clients (the Docker gateway), failures ban the account there, not the address', async () => {
  const gateway = '172.19.0.1'
  const g = new AuthGuard(settings, { shared: (ip) => ip === gateway })
  const clock = (): number => 5000
  // A stranger's guesses at names nobody has, and at alice's password.
  for (const name of ['x@x.example', 'y@x.example', 'z@x.example']) assert.equal(g.failed(gateway, name, 5000), false)
  assert.deepEqual(
    [1, 2, 3].map(() => g.failed(gateway, 'alice@x.example', 5000)),
    [false, false, true],
  )
  assert.equal(g.perAccount(gateway), true)
  assert.equal(g.bannedUntil(gateway, 'alice@x.example', 5001), 125_000, 'alice is banned from the gateway')
  assert.equal(await g.admit(gateway, 'alice@x.example', clock), null)
  assert.equal(g.bannedUntil(gateway, 'bob@x.example', 5001), null, 'bob, behind the same gateway, is not')
  const end = await g.admit(gateway, 'bob@x.example', clock)
  assert.equal(typeof end, 'function')
  end!()
  assert.equal(g.bannedUntil('192.0.2.1', 'alice@x.example', 5001), null, 'nor is alice from her own address')
  // Anywhere else an address is one client: its failures at any names add up to a ban of it.
  assert.equal(g.perAccount('192.0.2.1'), false)
  for (const name of ['x@x.example', 'y@x.example']) g.failed('192.0.2.1', name, 5000)
  assert.equal(g.failed('192.0.2.1', 'z@x.example', 5000), true)
  assert.notEqual(g.bannedUntil('192.0.2.1', 'bob@x.example', 5001), null)
})
