// A directory harvest on :25 with the default limits: a client guesses recipient names RCPT after
// RCPT to learn which exist. Past SMTP_SOFT_ERROR_LIMIT (10) errors each command waits
// SMTP_ERROR_SLEEP (1 s), at SMTP_HARD_ERROR_LIMIT (20) the session gets 421 4.7.0; with
// SMTP_MAX_CLIENTS_PER_IP (50) one address guesses through 50 sessions at most. A sender that
// delivers its mail between errors is not cut off.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { startAppliance } from '../support/appliance.js'
import { Wire } from './wire.js'
import { record, sampleMemory, totalRestarts } from './figures.js'

const TOO_MANY = '421 4.7.0 mx.ours.example Error: too many errors'
const UNKNOWN = /^550 5\.1\.1 /
const USERS = ['alice', 'bob', 'carol']

/** One session guessing `names` (after MAIL FROM) until the server closes it; each reply (a 421 last) and its time. */
async function harvest(port: number, names: string[], localAddress: string): Promise<{ name: string; reply: string; ms: number }[]> {
  const w = await Wire.open(port, { localAddress, timeoutMs: 30_000 })
  const out: { name: string; reply: string; ms: number }[] = []
  try {
    await w.send('EHLO harvester.example')
    await w.send('MAIL FROM:<probe@remote.example>')
    for (const name of names) {
      const t0 = performance.now()
      const reply = await w.trySend(`RCPT TO:<${name}@ours.example>`)
      out.push({ name, reply, ms: performance.now() - t0 })
      if (reply.startsWith('closed') || reply.startsWith('421')) break
    }
    return out
  } finally {
    w.close()
  }
}

test(
  'a harvest of recipient names gets 20 answers a session, the last 10 a second apart; 50 sessions an address',
  { timeout: 180_000 },
  async (t) => {
    const started = Date.now()
    const app = await startAppliance({
      services: ['smtp-ingress', 'delivery'],
      users: Object.fromEntries(USERS.map((u) => [`${u}@ours.example`, 'pw'])),
    })
    t.after(() => app.stop())
    const mem = sampleMemory(app)
    const port = app.port('smtp-ingress', 'smtp')
    // One session: 40 names, three of them real (at 5, 15 and 25).
    const names = Array.from({ length: 40 }, (_, i) => (i === 5 ? 'alice' : i === 15 ? 'bob' : i === 25 ? 'carol' : `guess${i}`))
    const one = await harvest(port, names, '127.0.0.2')
    const answered = one.filter((r) => /^[245]\d\d /.test(r.reply) && r.reply !== TOO_MANY)
    const errors = answered.filter((r) => UNKNOWN.test(r.reply))
    const fast = errors.slice(0, 10)
    const slowed = answered.slice(answered.indexOf(errors[10]))
    // Many sessions at once from one address, for 12 s: how many names it learns about.
    const until = Date.now() + 12_000
    let guesses = 0
    let refusedAtConnect = 0
    let sessions = 0
    await Promise.all(
      Array.from({ length: 60 }, async (_, k) => {
        while (Date.now() < until) {
          sessions++
          const w = await Wire.open(port, { localAddress: '127.0.0.3', timeoutMs: 30_000 }).catch(() => null)
          if (!w || !w.greeting.startsWith('220')) {
            refusedAtConnect++
            w?.close()
            await new Promise((r) => setTimeout(r, 200))
            continue
          }
          try {
            await w.trySend('EHLO harvester.example')
            await w.trySend('MAIL FROM:<probe@remote.example>')
            for (let i = 0; i < 25 && Date.now() < until; i++) {
              const r = await w.trySend(`RCPT TO:<p${k}x${sessions}x${i}@ours.example>`)
              if (!UNKNOWN.test(r)) break
              guesses++
            }
          } finally {
            w.close()
          }
        }
      }),
    )
    const restarts = await totalRestarts(app)
    await mem.stop()
    // Each closing and each refusal is logged (refusals are counted in facteur_messages_rejected_total).
    const count = (): { closed: number; refused: number } => {
      const lines = app.output().split('\n')
      return {
        closed: lines.filter((l) => l.includes('too many errors') && l.includes('127.0.0.2')).length,
        refused: lines.filter((l) => l.includes('refused') && l.includes('CONNECT') && l.includes('127.0.0.3')).length,
      }
    }
    // The last lines may still be on their way through the supervisor's pipe.
    for (let i = 0; i < 50 && count().refused < refusedAtConnect; i++) await new Promise((r) => setTimeout(r, 100))
    const logged = count()
    const seconds = (Date.now() - started) / 1000
    record({
      test: 'directory harvest (harvest.test.ts)',
      load: `one session guessing 40 names on :25 (3 real); then 60 sessions at once from one address guessing for 12 s; the default limits (SMTP_SOFT_ERROR_LIMIT=10, SMTP_HARD_ERROR_LIMIT=20, SMTP_ERROR_SLEEP=1s, SMTP_MAX_CLIENTS_PER_IP=50)`,
      injected: 'RCPT TO unknown names one after another',
      restarts,
      peakRssMiB: mem.max(),
      result: `one session: ${answered.length} names answered (${errors.length} 550 5.1.1), the first 10 errors in ${Math.max(...fast.map((r) => r.ms)).toFixed(0)} ms at most, each command after them in ${Math.min(...slowed.map((r) => r.ms)).toFixed(0)} ms at least, then "${one[one.length - 1].reply}"; 60 sessions at once for 12 s: ${guesses} guesses answered (${(guesses / 12).toFixed(0)}/s), ${refusedAtConnect} connections refused 421 4.7.0 (past 50 from the address) of ${sessions}`,
      durationS: Math.round(seconds),
    })
    assert.equal(errors.length, 20, JSON.stringify(one.map((r) => r.reply.slice(0, 3))))
    assert.deepEqual(
      answered.filter((r) => r.reply.startsWith('250')).map((r) => r.name),
      ['alice', 'bob'],
      'the real names met before the limit',
    )
    assert.equal(one[one.length - 1].reply, TOO_MANY)
    for (const r of slowed) assert.ok(r.ms >= 900, `${r.name}: ${r.ms} ms`)
    assert.ok(refusedAtConnect > 0, 'the address met SMTP_MAX_CLIENTS_PER_IP')
    assert.equal(logged.closed, 1, 'the session closed for its errors is logged')
    assert.equal(logged.refused, refusedAtConnect, 'each connection refused is logged')
    assert.equal(restarts, 0)
  },
)
