// Disk full: the spool, then the mailbox filesystem, on a small tmpfs made by the test. A full
// spool answers 452 4.3.1 (RFC 3463 §3.4) and loses nothing it accepted; a full mailbox
// filesystem makes delivery defer and retry; both recover by themselves once space returns.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { startAppliance, type Appliance } from '../support/appliance.js'
import { readMbox } from '../support/mbox.js'
import { runOk, run, isRoot } from '../support/process.js'
import { servicePid } from '../support/supervisor.js'
import { Wire } from './wire.js'
import { loadMessage, checkDelivered } from './load.js'
import { record, sampleMemory, spoolEnvelopes, totalRestarts } from './figures.js'

async function tmpfs(t: { after(fn: () => Promise<void>): void }, size: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-full-'))
  await runOk('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir])
  t.after(async () => {
    await run('umount', ['-l', dir])
    await fs.rm(dir, { recursive: true, force: true })
  })
  return dir
}

/** Fills the filesystem of `dir` until `leave` bytes are free; returns the filler's path. */
async function fill(dir: string, leave: number): Promise<string> {
  const st = await fs.statfs(dir)
  const free = st.bavail * st.bsize
  const filler = path.join(dir, 'filler')
  await fs.writeFile(filler, Buffer.alloc(Math.max(0, free - leave)))
  return filler
}

async function send(port: number, id: string, size: number, rcpt = 'alice@ours.example'): Promise<string> {
  const w = await Wire.open(port)
  try {
    await w.send('EHLO full.example')
    const mail = await w.send(`MAIL FROM:<s@remote.example> SIZE=${size + 200}`)
    if (!mail.startsWith('250')) return mail
    const r = await w.send(`RCPT TO:<${rcpt}>`)
    if (!r.startsWith('250')) return r
    const d = await w.send('DATA')
    if (!d.startsWith('354')) return d
    return await w.send(loadMessage(id, size).replace(/^\./gm, '..') + '.')
  } finally {
    w.close()
  }
}

/** Reads the mbox as a mail reader does: under its dotlock, so an append in progress is not seen. */
async function lockedRead(file: string): Promise<string[]> {
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      await fs.writeFile(`${file}.lock`, `${process.pid}\n`, { flag: 'wx' })
      break
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
      if (Date.now() > deadline) throw e
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  try {
    return await readMbox(file)
  } finally {
    await fs.rm(`${file}.lock`, { force: true })
  }
}

async function mailboxIds(file: string): Promise<{ ids: string[]; broken: number }> {
  const ids: string[] = []
  let broken = 0
  for (const m of await lockedRead(file)) {
    const c = checkDelivered(m)
    if (c.id) ids.push(c.id)
    if (!c.whole) broken++
  }
  return { ids, broken }
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await cond()) return true
    await new Promise((r) => setTimeout(r, 200))
  }
  return cond()
}

test(
  'a full spool answers 452 4.3.1, keeps what it accepted, and accepts again when space returns',
  { skip: !isRoot() && 'mount needs root' },
  async (t) => {
    const started = Date.now()
    // The whole appliance directory (and so its spool) lives on a 4 MiB tmpfs; the mailboxes do not.
    const base = await tmpfs(t, '4m')
    const mailDir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-full-mail-'))
    t.after(() => fs.rm(mailDir, { recursive: true, force: true }))
    const saved = process.env.TMPDIR
    process.env.TMPDIR = base
    let app: Appliance
    try {
      app = await startAppliance({
        timeoutMs: 90_000,
        users: { 'alice@ours.example': 'pw' },
        env: { MAIL_DIR: mailDir, QUEUE_RETRY_MIN: '1s', QUEUE_RETRY_MAX: '2s' },
      })
    } finally {
      if (saved === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = saved
    }
    t.after(() => app.stop())
    const mem = sampleMemory(app)
    const port = app.port('smtp-ingress', 'smtp')
    const mbox = path.join(mailDir, 'alice')

    // Hold delivery, so what is accepted stays in the spool; leave 400 KiB free.
    const deliveryPid = await servicePid(app, 'delivery')
    process.kill(deliveryPid, 'SIGSTOP')
    const filler = await fill(app.spoolDir, 400 * 1024)
    const accepted: string[] = []
    const full: string[] = []
    let sent = 0
    for (let i = 0; i < 40 && full.length < 3; i++) {
      sent++
      const reply = await send(port, `spool-${i}`, 60 * 1024)
      if (reply.startsWith('250')) accepted.push(`spool-${i}`)
      else full.push(reply)
    }
    const queuedWhileFull = (await spoolEnvelopes(app.spoolDir)).length
    // Space returns, delivery resumes: everything accepted arrives once, and new mail is accepted.
    await fs.rm(filler)
    process.kill(deliveryPid, 'SIGCONT')
    sent++
    const after = await send(port, 'spool-after', 60 * 1024)
    const expected = [...accepted, ...(after.startsWith('250') ? ['spool-after'] : [])]
    await waitFor(async () => (await mailboxIds(mbox)).ids.length >= expected.length, 20_000)
    const { ids, broken } = await mailboxIds(mbox)
    const lost = expected.filter((id) => !ids.includes(id))
    const dup = ids.length - new Set(ids).size
    const restarts = await totalRestarts(app)
    await mem.stop()
    record({
      test: 'disk full: spool (disk-full.test.ts)',
      load: `${sent} messages of 60 KiB to :25, delivery stopped (SIGSTOP) while the spool fills`,
      injected: 'spool on a 4 MiB tmpfs filled to 400 KiB free by a filler file, then the filler removed',
      sent,
      accepted: expected.length,
      delivered: ids.length,
      lost: lost.length,
      duplicated: dup,
      restarts,
      peakRssMiB: mem.max(),
      result: `${accepted.length} accepted before full, then ${JSON.stringify(full[0] ?? 'no refusal')} (×${full.length}); ${queuedWhileFull} queued while full; after space returned: ${after.slice(0, 24)}…; ${broken} truncated`,
      durationS: Math.round((Date.now() - started) / 1000),
    })
    assert.ok(accepted.length > 0, 'some mail fits before the spool is full')
    assert.ok(full.length > 0, 'the spool filled')
    for (const r of full) assert.match(r, /^452 4\.3\.1 /)
    assert.equal(queuedWhileFull, accepted.length)
    assert.match(after, /^250 /)
    assert.deepEqual(lost, [])
    assert.equal(dup, 0)
    assert.equal(broken, 0)
    assert.equal(restarts, 0)
  },
)

test(
  'a full mailbox filesystem makes delivery defer; it delivers every message whole once space returns',
  { skip: !isRoot() && 'mount needs root' },
  async (t) => {
    const started = Date.now()
    const mailDir = await tmpfs(t, '2m')
    const app = await startAppliance({
      timeoutMs: 90_000,
      users: { 'alice@ours.example': 'pw' },
      env: { MAIL_DIR: mailDir, QUEUE_RETRY_MIN: '1s', QUEUE_RETRY_MAX: '2s' },
    })
    t.after(() => app.stop())
    const mem = sampleMemory(app)
    const port = app.port('smtp-ingress', 'smtp')
    const mbox = path.join(mailDir, 'alice')
    // One message first, so the mailbox holds something that must stay intact.
    assert.match(await send(port, 'mbox-first', 2000), /^250 /)
    await waitFor(async () => (await mailboxIds(mbox)).ids.length === 1, 10_000)
    const filler = await fill(mailDir, 100 * 1024)
    const accepted = ['mbox-first']
    const N = 8
    for (let i = 0; i < N; i++) {
      const reply = await send(port, `mbox-${i}`, 60 * 1024)
      assert.match(reply, /^250 /)
      accepted.push(`mbox-${i}`)
    }
    // Delivery tries, hits ENOSPC, and defers: the messages wait in the spool.
    await new Promise((r) => setTimeout(r, 3000))
    const whileFull = await mailboxIds(mbox)
    const deferred = (await spoolEnvelopes(app.spoolDir)).length
    await fs.rm(filler)
    await waitFor(async () => (await mailboxIds(mbox)).ids.length >= accepted.length, 30_000)
    const { ids, broken } = await mailboxIds(mbox)
    const lost = accepted.filter((id) => !ids.includes(id))
    const dup = ids.length - new Set(ids).size
    const restarts = await totalRestarts(app)
    await mem.stop()
    const deferrals = (app.output().match(/ENOSPC|4\.3\.1|insufficient|no space/gi) ?? []).length
    record({
      test: 'disk full: mailboxes (disk-full.test.ts)',
      load: `${N} messages of 60 KiB to one mbox`,
      injected: 'MAIL_DIR on a 2 MiB tmpfs filled to 100 KiB free, then the filler removed',
      sent: accepted.length,
      accepted: accepted.length,
      delivered: ids.length,
      lost: lost.length,
      duplicated: dup,
      restarts,
      peakRssMiB: mem.max(),
      result: `while full: ${whileFull.ids.length} in the mbox (${whileFull.broken} truncated), ${deferred} deferred in the spool, ${deferrals} ENOSPC/4.3.1 log mentions; after: all delivered, ${broken} truncated`,
      durationS: Math.round((Date.now() - started) / 1000),
    })
    assert.equal(whileFull.broken, 0, 'no partial message left in the mbox while full')
    assert.ok(deferred > 0, 'delivery deferred while the filesystem was full')
    assert.deepEqual(lost, [])
    assert.equal(dup, 0)
    assert.equal(broken, 0)
    assert.equal(restarts, 0)
  },
)
