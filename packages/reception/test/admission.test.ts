import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { createAdmission } from '../src/admission.js'

/** Which of these admissions have resolved so far. */
async function settled(ps: Record<string, Promise<void>>): Promise<string[]> {
  const done: string[] = []
  for (const [k, p] of Object.entries(ps)) void p.then(() => done.push(k))
  await sleep(5)
  return done.sort()
}

test('past the limit transactions wait, first come first served; an ended one lets the next in', async () => {
  const a = createAdmission(3, 60_000)
  for (const id of ['s0', 's1', 's2']) await a.admit(id)
  assert.equal(a.active, 3)
  const waiting = { x: a.admit('x'), y: a.admit('y') }
  assert.deepEqual(await settled(waiting), [])
  assert.equal(a.waiting, 2)
  a.release('s1')
  assert.deepEqual(await settled(waiting), ['x'])
  a.release('s2')
  assert.deepEqual(await settled(waiting), ['x', 'y'])
  assert.equal(a.active, 3)
  // A session holding a place begins its next transaction at once; one that held none frees none.
  await a.admit('x')
  a.release('never-admitted')
  assert.equal(a.active, 3)
  assert.equal(a.waiting, 0)
})

test('a transaction that waited too long goes ahead outside the count; a session that closed while waiting gives up its turn', async () => {
  const a = createAdmission(1, 50)
  // The wait's timer does not hold the process open (a listener does, in a service).
  const alive = setInterval(() => undefined, 1000)
  await a.admit('holder')
  const started = Date.now()
  await a.admit('late')
  assert.ok(Date.now() - started >= 45)
  assert.equal(a.active, 1, 'over the limit, not counted')
  a.release('late')
  assert.equal(a.active, 1, 'its end frees no place')
  const gone = a.admit('gone')
  a.release('gone')
  assert.equal(a.waiting, 0)
  a.release('holder')
  assert.equal(a.active, 0)
  assert.deepEqual(await settled({ gone }), [], 'never answered')
  await a.admit('next')
  assert.equal(a.active, 1)
  clearInterval(alive)
})

test('limit 0: no limit', async () => {
  const a = createAdmission(0)
  for (let i = 0; i < 100; i++) await a.admit(`s${i}`)
  assert.equal(a.waiting, 0)
  assert.equal(a.active, 0)
})
