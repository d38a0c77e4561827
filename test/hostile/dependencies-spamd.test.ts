// Dependencies failing: the real spamd hangs (SIGSTOP: the kernel accepts connections, nobody
// answers), then stops (connection refused), then a server on its port answers garbage (random
// text, a reply with a nonsense Spam header, binary then silence, a byte every 300 ms, an 8 MiB
// flood), then spamd comes back; all while the load client sends to two appliances sharing it,
// one with FILTER_FAILURE=tempfail and one with FILTER_FAILURE=accept.
//   tempfail: every message gets 451 4.7.1 while spamd cannot answer; none is accepted unscanned.
//   accept:   mail goes on, tagged "X-Facteur-Filter: not scanned (spam scanner unavailable)".
// Either way the filter answers within FILTER_SCAN_TIMEOUT (the callers never wait out their
// FILTER_TIMEOUT), nothing accepted is lost, and scanning resumes once spamd is back.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { startAppliance, type Appliance } from '../support/appliance.js'
import { startSpamd } from '../support/spamd.js'
import { binaryThenSilence, flood, sayAndClose, startGarbageServer, trickle } from '../support/garbage.js'
import { readMbox } from '../support/mbox.js'
import { deliveredCopies, runLoad, type LoadResult } from './load.js'
import { Phases, eventually, sleep } from './phases.js'
import { record, sampleMemory, totalRestarts } from './figures.js'

// spamd scans about 2 messages a second on a quiet 2-CPU machine and far fewer on a busy one: room
// for that, and for a first scan after a restart (rules compiled again).
const SCAN_TIMEOUT_S = 15
const FILTER_TIMEOUT_S = 20
// Longer than a scan timeout with room: a reply to a scan started in the hang must land in it.
const HUNG_S = 20
const STOPPED_S = 4
const OUTAGE = ['hung', 'stopped', 'garbage'] as const
type Phase = 'before' | (typeof OUTAGE)[number] | 'restarting' | 'back'

test(
  'spamd hung, stopped and answering garbage mid-load: 451 4.7.1 with FILTER_FAILURE=tempfail, tagged not scanned with accept, the filter never outlasts its scan timeout, and both recover',
  { timeout: 360_000 },
  async (t) => {
    const started = Date.now()
    const spamd = await startSpamd()
    t.after(() => spamd.close())
    const modes = ['tempfail', 'accept'] as const
    const apps = {} as Record<(typeof modes)[number], Appliance>
    await Promise.all(
      modes.map(async (mode) => {
        apps[mode] = await startAppliance({
          timeoutMs: 120_000,
          services: ['filter', 'smtp-ingress', 'delivery'],
          users: { 'alice@ours.example': 'pw' },
          env: {
            CLAMAV_ENABLED: 'false',
            SPAM_ENGINE: 'spamassassin',
            SPAMD_PORT: String(spamd.port),
            FILTER_FAILURE: mode,
            FILTER_SCAN_TIMEOUT: `${SCAN_TIMEOUT_S}s`,
            FILTER_TIMEOUT: `${FILTER_TIMEOUT_S}s`,
          },
        })
        t.after(() => apps[mode].stop())
      }),
    )
    const mems = modes.map((m) => sampleMemory(apps[m]))

    const phases = new Phases<Phase>('before')
    const stop = new AbortController()
    const loads = Object.fromEntries(
      modes.map((mode) => [
        mode,
        runLoad({
          port: apps[mode].port('smtp-ingress', 'smtp'),
          count: 100_000,
          concurrency: 1,
          recipients: ['alice@ours.example'],
          budgetMs: 200_000,
          signal: stop.signal,
          onReply: phases.listener(`${mode} `),
        }),
      ]),
    ) as Record<(typeof modes)[number], Promise<LoadResult>>

    // Scanned mail flows through both (the first scans are slow: spamd compiles its rules).
    const scanned = (p: Phase, n: number) => modes.every((m) => phases.count(p, new RegExp(`^${m} 250`)) >= n)
    assert.ok(await eventually(() => scanned('before', 1), 120_000), `no mail accepted before the outage: ${phases.summary()}`)
    // The outage, each part long enough for a scan to time out more than once.
    phases.enter('hung')
    await spamd.pause()
    await sleep(HUNG_S * 1000)
    phases.enter('stopped')
    await spamd.stop()
    await sleep(STOPPED_S * 1000)
    const garbage = await startGarbageServer(spamd.port, [
      sayAndClose('random text'),
      sayAndClose('a nonsense Spam header', () => 'SPAMD/1.5 0 EX_OK\r\nSpam: perhaps ; lots / many\r\n\r\n'),
      binaryThenSilence,
      trickle(300),
      flood(),
    ])
    phases.enter('garbage')
    await sleep(FILTER_TIMEOUT_S * 1000 + 2000) // longer than the callers' wait: a stuck scan would show
    await garbage.close()
    phases.enter('restarting')
    await spamd.start()
    phases.enter('back')
    // Recovery: scanned mail accepted again by both appliances.
    const recovered = await eventually(() => scanned('back', 1), 90_000)
    const recoveredMs = phases.elapsed('back')
    await sleep(2000)
    stop.abort()
    const results = { tempfail: await loads.tempfail, accept: await loads.accept }

    const verdicts: Record<
      string,
      { delivered: number; scanned: number; unscanned: number; neither: number; lost: number; dup: number; broken: number }
    > = {}
    for (const mode of modes) {
      const app = apps[mode]
      const load = results[mode]
      const mbox = path.join(app.mailDir, 'alice')
      let copies = deliveredCopies(await readMbox(mbox))
      await eventually(async () => {
        copies = deliveredCopies(await readMbox(mbox))
        return [...load.accepted.keys()].every((id) => copies.byId.has(id))
      }, 30_000)
      const all = [...copies.byId.values()].flat()
      verdicts[mode] = {
        delivered: all.length,
        scanned: all.filter((m) => /^X-Spam-Status: /m.test(m)).length,
        unscanned: all.filter((m) => /^X-Facteur-Filter: not scanned \(spam scanner unavailable\)/m.test(m)).length,
        neither: all.filter((m) => !/^X-Spam-Status: /m.test(m) && !/^X-Facteur-Filter: not scanned/m.test(m)).length,
        lost: [...load.accepted.keys()].filter((id) => !copies.byId.has(id)).length,
        dup: [...copies.byId.values()].filter((c) => c.length > 1).length,
        broken: copies.broken,
      }
    }
    const callerTimeouts = Object.fromEntries(modes.map((m) => [m, (apps[m].output().match(/no verdict within/g) ?? []).length]))
    const restarts = Object.fromEntries(await Promise.all(modes.map(async (m) => [m, await totalRestarts(apps[m])] as const)))
    for (const m of modes)
      for (const line of apps[m].output().match(/^.*(restarted service|exited with).*$/gm) ?? []) t.diagnostic(`${m}: ${line}`)
    for (const m of mems) await m.stop()

    const summary = phases.summary()
    for (const [i, mode] of modes.entries()) {
      const v = verdicts[mode]
      const load = results[mode]
      record({
        test: `spamd hung, stopped, answering garbage mid-load, FILTER_FAILURE=${mode} (dependencies-spamd.test.ts)`,
        load: `messages in sequence over 1 connection to :25 of each (two appliances, one per FILTER_FAILURE, share spamd), real spamd, FILTER_SCAN_TIMEOUT=${SCAN_TIMEOUT_S}s, FILTER_TIMEOUT=${FILTER_TIMEOUT_S}s`,
        injected: `spamd SIGSTOP ${HUNG_S} s, stopped ${STOPPED_S} s, garbage on its port ${FILTER_TIMEOUT_S + 2} s (${Object.entries(
          garbage.connections,
        )
          .map(([k, n]) => `${k} ×${n}`)
          .join(', ')}), then restarted`,
        sent: load.sent,
        accepted: load.accepted.size,
        delivered: v.delivered,
        lost: v.lost,
        duplicated: v.dup,
        restarts: restarts[mode],
        peakRssMiB: mems[i].max(),
        result: `${v.scanned} delivered scanned, ${v.unscanned} tagged not scanned, ${v.neither} neither; ${load.tempfailed} 4xx retried by the client; filter calls the caller gave up on (FILTER_TIMEOUT): ${callerTimeouts[mode]}; ${recovered ? `scanned mail accepted again ${(recoveredMs / 1000).toFixed(1)} s after spamd returned` : 'NOT recovered within 90 s'}. Replies by phase (both appliances): ${summary}`,
        durationS: Math.round((Date.now() - started) / 1000),
      })
    }
    t.diagnostic(summary)

    assert.ok(recovered, 'scanned mail accepted again once spamd is back')
    for (const phase of OUTAGE) assert.ok(phases.count(phase, /^tempfail 451 4\.7\.1/) > 0, `tempfail: 451 4.7.1 while spamd is ${phase}`)
    for (const phase of OUTAGE) assert.ok(phases.count(phase, /^accept 250/) > 0, `accept: mail accepted while spamd is ${phase}`)
    assert.equal(verdicts.tempfail.unscanned, 0, 'tempfail: nothing accepted unscanned')
    assert.ok(verdicts.accept.unscanned > 0, 'accept: mail accepted unscanned is tagged so')
    for (const mode of modes) {
      const v = verdicts[mode]
      assert.equal(v.neither, 0, `${mode}: every delivered message is either scanned or tagged not scanned`)
      assert.equal(v.lost, 0, `${mode}: accepted, never delivered`)
      assert.equal(v.dup, 0, `${mode}: duplicates`)
      assert.equal(v.broken, 0, `${mode}: truncated messages`)
      assert.equal(callerTimeouts[mode], 0, `${mode}: the filter outlasted FILTER_TIMEOUT (a scan not bounded by FILTER_SCAN_TIMEOUT)`)
      // The filter reports spamd as a dependency that fails: the supervisor waits for it rather than
      // restarting the filter (or anything else) over an engine that is down.
      assert.equal(restarts[mode], 0, `${mode}: services restarted while spamd was out`)
      assert.equal(results[mode].inDoubt.size, 0, `${mode}: no reply after the final dot`)
      assert.equal(phases.count('garbage', new RegExp(`^${mode} no reply`)), 0)
    }
  },
)
