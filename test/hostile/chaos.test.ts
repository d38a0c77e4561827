// Chaos under load: the load client sends messages with unique ids and body checksums to :25
// while a random service (smtp-ingress, filter, delivery) is killed with SIGKILL every few
// seconds and the supervisor restarts it. Once the queue is flushed, every message answered 250
// is in a mailbox exactly once and whole; duplicates and losses are counted and reported.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { readMbox } from '../support/mbox.js'
import { applianceHealth } from '../support/supervisor.js'
import { runLoad, checkDelivered } from './load.js'
import { record, spoolEnvelopes, totalRestarts } from './figures.js'
import { startScannedAppliance } from './scanned.js'

// The issue's load, in CI too (about 4 minutes); HOSTILE_CHAOS_MESSAGES for a quicker local run.
const COUNT = Number(process.env.HOSTILE_CHAOS_MESSAGES ?? 10_000)
const USERS = ['alice', 'bob', 'carol', 'dave']

test(
  `every message answered 250 is delivered exactly once and whole while services are killed with SIGKILL (${COUNT} messages)`,
  { timeout: 1_200_000 },
  async (t) => {
    const started = Date.now()
    const { app, port, mem } = await startScannedAppliance(t, {
      users: Object.fromEntries(USERS.map((u) => [`${u}@ours.example`, 'pw'])),
      env: { FILTER_FAILURE: 'tempfail', QUEUE_RETRY_MIN: '1s', QUEUE_RETRY_MAX: '2s', SMTP_MAX_CLIENTS: '100' },
    })

    // The chaos: every 3-5 s, SIGKILL one running service, chosen at random. The supervisor's
    // backoff doubles with each restart less than a minute after the last (1, 2, 4, 8 ... 30 s), so
    // each service is killed at most KILLS_EACH times: beyond that the appliance is mostly waiting.
    const victims = ['smtp-ingress', 'filter', 'delivery']
    const kills: Record<string, number> = {}
    let loading = true
    const KILLS_EACH = 30
    const chaos = (async () => {
      while (loading) {
        await new Promise((r) => setTimeout(r, 5000 + Math.random() * 5000))
        if (!loading) break
        try {
          const { body } = await applianceHealth(app)
          const running = victims.filter((v) => body.services[v]?.running && body.services[v]?.pid && (kills[v] ?? 0) < KILLS_EACH)
          if (running.length === 0) continue
          const v = running[Math.floor(Math.random() * running.length)]
          process.kill(body.services[v].pid!, 'SIGKILL')
          kills[v] = (kills[v] ?? 0) + 1
        } catch {
          // raced with a restart: next round
        }
      }
    })()

    const load = await runLoad({
      port,
      count: COUNT,
      concurrency: 8,
      recipients: USERS.map((u) => `${u}@ours.example`),
      budgetMs: 900_000,
    })
    loading = false
    await chaos
    const loadDone = Date.now()

    // Flush: wait until every service runs again and the spool is empty (bounded).
    const flushDeadline = Date.now() + 90_000
    for (;;) {
      const { body } = await applianceHealth(app).catch(() => ({
        body: { services: {} } as Awaited<ReturnType<typeof applianceHealth>>['body'],
      }))
      const up = victims.every((v) => body.services[v]?.running)
      if (up && (await spoolEnvelopes(app.spoolDir)).length === 0) break
      if (Date.now() > flushDeadline) break
      await new Promise((r) => setTimeout(r, 500))
    }
    const spooled = await spoolEnvelopes(app.spoolDir)
    const leftInSpool = spooled.length
    const spooledIds = new Set(spooled.map((e) => e.id))
    // Locks left in MAIL_DIR when the flush ends (a lock file without its journal waits 5 minutes).
    const locks: string[] = []
    for (const f of (await fs.readdir(app.mailDir)).filter((n) => n.endsWith('.lock')))
      locks.push(`${f}: ${JSON.stringify((await fs.readFile(path.join(app.mailDir, f), 'utf8').catch(() => '?')).trim())}`)

    const seen = new Map<string, number>()
    let broken = 0
    let delivered = 0
    for (const u of USERS) {
      for (const m of await readMbox(path.join(app.mailDir, u))) {
        delivered++
        const c = checkDelivered(m)
        if (!c.id || !c.whole) broken++
        if (c.id) seen.set(c.id, (seen.get(c.id) ?? 0) + 1)
      }
    }
    // Lost: answered 250, not in a mailbox and not in the spool either. Still in the spool: not delivered yet.
    const undelivered = [...load.accepted.entries()].filter(([id, q]) => !seen.has(id) && spooledIds.has(q)).map(([id]) => id)
    const lost = [...load.accepted.entries()].filter(([id, q]) => !seen.has(id) && !spooledIds.has(q)).map(([id]) => id)
    const duplicated = [...seen.entries()].filter(([, n]) => n > 1)
    const unacked = [...seen.keys()].filter((id) => !load.accepted.has(id))
    const unexpected = unacked.filter((id) => !load.inDoubt.has(id))
    const restarts = await totalRestarts(app)
    await mem.stop()
    const killText = Object.entries(kills)
      .map(([k, n]) => `${k} ×${n}`)
      .join(', ')
    record({
      test: 'chaos under load (chaos.test.ts)',
      load: `${COUNT} messages (0.5-4.5 KiB, 1 in 20 of 64 KiB) over 8 connections to :25, filter + real clamd on; mbox`,
      injected: `SIGKILL of a random running service every 5-10 s during the load: ${killText}`,
      sent: load.sent,
      accepted: load.accepted.size,
      delivered,
      lost: lost.length,
      duplicated: duplicated.length,
      restarts,
      peakRssMiB: mem.max(),
      result: `${broken} truncated or interleaved; ${load.tempfailed} tempfailed (4xx), ${load.broken} cut before the final dot, ${load.inDoubt.size} cut after it (of which ${unacked.length} delivered, allowed); ${leftInSpool} left in the spool (${undelivered.length} of them answered 250)${locks.length ? `, locks left: ${locks.join(', ')}` : ''}; flush waited ${Math.round((Date.now() - loadDone) / 1000)} s`,
      durationS: Math.round((Date.now() - started) / 1000),
    })
    t.diagnostic(`kills: ${killText}; replies ${JSON.stringify(load.replies)}`)
    assert.ok(load.accepted.size > COUNT / 2, `only ${load.accepted.size} of ${COUNT} accepted`)
    assert.deepEqual(lost, [], 'messages answered 250, neither delivered nor in the spool')
    assert.deepEqual(undelivered, [], `messages answered 250 still in the spool after the flush (locks: ${locks.join(', ')})`)
    assert.equal(broken, 0, 'truncated or interleaved messages')
    // A SIGKILL of delivery between a mailbox write and the envelope's update makes that recipient
    // pending again: at-least-once. Each such kill can duplicate at most what its workers (4) had in
    // flight; the number is in RELIABILITY.md, target 0.
    assert.ok(duplicated.length <= (kills.delivery ?? 0) * 4, `duplicates: ${JSON.stringify(duplicated)}`)
    if (duplicated.length) t.diagnostic(`duplicated after ${kills.delivery} delivery kill(s): ${JSON.stringify(duplicated)}`)
    assert.deepEqual(unexpected, [], 'delivered messages the client never finished sending')
    assert.ok(Object.keys(kills).length > 0)
  },
)
