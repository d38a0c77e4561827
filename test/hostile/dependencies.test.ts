// Dependencies failing: the real clamd stops in the middle of a stream of clean and infected
// (EICAR) messages, comes back, then hangs (SIGSTOP: connections accepted, never answered). With
// FILTER_FAILURE=tempfail, mail is answered 451 while clamd is away or hung (within
// FILTER_SCAN_TIMEOUT), never accepted unscanned, and everything recovers once clamd is back.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { EICAR } from '../support/clamd.js'
import { readMbox } from '../support/mbox.js'
import { Wire } from './wire.js'
import { record, totalRestarts } from './figures.js'
import { startScannedAppliance } from './scanned.js'

// EICAR as an attachment: clamd's hash signature matches the decoded part, as a mail client sends it.
// Named .txt: a .com name is refused by FILTER_BANNED_EXTENSIONS without clamd, and this test is
// about what clamd's absence does.
const INFECTED = [
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="b1"',
  '',
  '--b1',
  'Content-Type: text/plain',
  '',
  'see attachment',
  '--b1',
  'Content-Type: application/octet-stream; name="eicar.txt"',
  'Content-Disposition: attachment; filename="eicar.txt"',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from(EICAR, 'latin1').toString('base64'),
  '--b1--',
].join('\r\n')

async function send(port: number, subject: string, body: string): Promise<string> {
  const w = await Wire.open(port, { timeoutMs: 30_000 })
  try {
    await w.send('EHLO dep.example')
    await w.send('MAIL FROM:<s@remote.example>')
    await w.send('RCPT TO:<alice@ours.example>')
    const d = await w.send('DATA')
    if (!d.startsWith('354')) return d
    return await w.send(`Subject: ${subject}\r\n${body}\r\n.`)
  } finally {
    w.close()
  }
}

test(
  'with clamd stopped or hung mid-stream mail is tempfailed 451, never accepted unscanned, and recovers when clamd returns',
  { timeout: 120_000 },
  async (t) => {
    const started = Date.now()
    const { clamd, app, port, mem } = await startScannedAppliance(t, {
      users: { 'alice@ours.example': 'pw' },
      env: { FILTER_FAILURE: 'tempfail', FILTER_SCAN_TIMEOUT: '5s' },
    })

    type Phase = 'before' | 'down' | 'after' | 'hung' | 'resumed'
    const tally: Record<Phase, Record<string, number>> = { before: {}, down: {}, after: {}, hung: {}, resumed: {} }
    const eicarAccepted: string[] = []
    let phase: Phase = 'before'
    let n = 0
    let sent = 0
    let acceptedClean = 0
    const stream = async (until: () => boolean): Promise<void> => {
      while (!until()) {
        const i = n++
        const infected = i % 3 === 2
        const p = phase
        sent++
        const reply = await send(port, `dep ${i}${infected ? ' eicar' : ''}`, infected ? INFECTED : `\r\nclean message ${i}`)
        const key = `${infected ? 'eicar' : 'clean'} ${reply.slice(0, 9)}`
        tally[p][key] = (tally[p][key] ?? 0) + 1
        if (infected && reply.startsWith('250')) eicarAccepted.push(`${p} ${i}`)
        if (!infected && reply.startsWith('250')) acceptedClean++
      }
    }
    const until = (ms: number) => {
      const end = Date.now() + ms
      return () => Date.now() > end
    }
    // Recovery: the first clean message accepted after clamd is back, then a few more.
    const recover = async (p: Phase): Promise<number> => {
      const back = Date.now()
      while (Date.now() - back < 20_000) {
        await stream(until(0))
        if ((tally[p]['clean 250 2.0.0'] ?? 0) > 0) {
          await stream(until(2000))
          return Date.now() - back
        }
        await new Promise((r) => setTimeout(r, 200))
      }
      return -1
    }
    await stream(until(2000))
    await clamd.stop()
    phase = 'down'
    await stream(until(4000))
    await clamd.start()
    phase = 'after'
    const recoveredMs = await recover('after')
    await clamd.pause()
    phase = 'hung'
    const hungAt = Date.now()
    await stream(until(8000)) // FILTER_SCAN_TIMEOUT is 5 s: one or two messages
    const slowestHungMs = Date.now() - hungAt
    await clamd.resume()
    phase = 'resumed'
    const resumedMs = await recover('resumed')

    // Nothing delivered went unscanned; every accepted clean message arrives.
    const mbox = path.join(app.mailDir, 'alice')
    const deadline = Date.now() + 15_000
    let msgs = await readMbox(mbox)
    while (msgs.length < acceptedClean && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200))
      msgs = await readMbox(mbox)
    }
    const unscanned = msgs.filter((m) => /^X-Facteur-Filter: not scanned/m.test(m)).length
    const eicarDelivered = msgs.filter((m) => m.includes('eicar.txt')).length
    const restarts = await totalRestarts(app)
    await mem.stop()
    const show = (p: Phase) =>
      Object.entries(tally[p])
        .map(([k, v]) => `${k}… ×${v}`)
        .join(', ')
    record({
      test: 'clamd stopped mid-load (dependencies.test.ts)',
      load: `${sent} messages in sequence to :25 (1 in 3 EICAR), filter on, FILTER_FAILURE=tempfail`,
      injected: 'real clamd stopped (SIGTERM) for 4 s, then started again; later hung (SIGSTOP) for 8 s, then continued',
      sent,
      accepted: acceptedClean + eicarAccepted.length,
      delivered: msgs.length,
      lost: Math.max(0, acceptedClean - msgs.length),
      restarts,
      peakRssMiB: mem.max(),
      result: `before: ${show('before')}; clamd down: ${show('down')}; back: ${show('after')}; first clean 250 ${recoveredMs} ms after clamd returned; clamd hung: ${show('hung')} (${((slowestHungMs - 8000) / 1000).toFixed(1)} s past the 8 s of the hang for the last reply); continued: ${show('resumed')}, first clean 250 after ${resumedMs} ms; ${unscanned} delivered unscanned, ${eicarDelivered} EICAR delivered`,
      durationS: Math.round((Date.now() - started) / 1000),
    })
    assert.deepEqual(eicarAccepted, [])
    assert.ok(Object.keys(tally.down).length > 0, 'mail was sent while clamd was down')
    for (const k of Object.keys(tally.down)) assert.match(k, /^(clean|eicar) 451 4\.\d\.\d/, `while clamd is down: ${k}`)
    assert.ok(recoveredMs >= 0, 'clean mail accepted again after clamd returned')
    assert.ok(Object.keys(tally.hung).length > 0, 'mail was sent while clamd was hung')
    for (const k of Object.keys(tally.hung)) assert.match(k, /^(clean|eicar) 451 4\.\d\.\d/, `while clamd is hung: ${k}`)
    assert.ok(resumedMs >= 0, 'clean mail accepted again after clamd continued')
    for (const k of [...Object.keys(tally.after), ...Object.keys(tally.resumed)])
      if (k.startsWith('eicar')) assert.match(k, /^eicar (554 5\.7\.1|451 4)/)
    assert.equal(unscanned, 0)
    assert.equal(eicarDelivered, 0)
    assert.equal(msgs.length, acceptedClean)
    assert.equal(restarts, 0)
  },
)
