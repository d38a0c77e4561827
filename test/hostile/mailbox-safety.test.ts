// Mailbox safety: symlinks planted in MAIL_DIR (a mailbox pointing at a file elsewhere, a %d
// directory pointing at a directory elsewhere) and a mailbox locked by another reader (a dotlock
// held by this test). Nothing is written outside MAIL_DIR; a locked mailbox waits, then gets its
// message once the lock goes. Local parts that would leave MAIL_DIR are refused at RCPT
// (test/ingress.test.ts: 553 5.1.3), and tried here once more.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { startAppliance } from '../support/appliance.js'
import { readMaildir, readMbox } from '../support/mbox.js'
import { isRoot, run } from '../support/process.js'
import { openSpool } from '@facteur/spool'
import { Wire } from './wire.js'
import { record, sampleMemory, spoolEnvelopes, totalRestarts } from './figures.js'

async function send(port: number, rcpt: string, subject: string, from = 's@remote.example'): Promise<string> {
  const w = await Wire.open(port)
  try {
    await w.send('EHLO safe.example')
    await w.send(`MAIL FROM:<${from}>`)
    const r = await w.send(`RCPT TO:<${rcpt}>`)
    if (!r.startsWith('250')) return r
    await w.send('DATA')
    return await w.send(`Subject: ${subject}\r\n\r\nbody of ${subject}\r\n.`)
  } finally {
    w.close()
  }
}

async function until(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await cond()) return true
    await new Promise((r) => setTimeout(r, 200))
  }
  return cond()
}

test('planted symlinks get nothing written through them; a dotlocked mailbox waits for the lock', { timeout: 120_000 }, async (t) => {
  const started = Date.now()
  const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-outside-'))
  t.after(() => fs.rm(outside, { recursive: true, force: true }))
  const passwdCopy = path.join(outside, 'passwd-copy')
  await fs.writeFile(passwdCopy, 'root:x:0:0:root:/root:/bin/bash\n')
  const outsideDir = path.join(outside, 'elsewhere')
  await fs.mkdir(outsideDir)
  const app = await startAppliance({
    timeoutMs: 90_000,
    users: { 'alice@ours.example': 'pw', 'bob@ours.example': 'pw', 'carol@second.example': 'pw' },
    env: { LOCAL_DOMAINS: 'ours.example,second.example', QUEUE_RETRY_MIN: '1s', QUEUE_RETRY_MAX: '2s' },
  })
  t.after(() => app.stop())
  const mem = sampleMemory(app)
  const port = app.port('smtp-ingress', 'smtp')
  await fs.mkdir(path.join(app.mailDir, 'ours.example'), { recursive: true })
  // 1. /var/mail/%d/alice -> a file elsewhere; 2. /var/mail/second.example -> a directory elsewhere.
  await fs.symlink(passwdCopy, path.join(app.mailDir, 'ours.example', 'alice'))
  await fs.symlink(outsideDir, path.join(app.mailDir, 'second.example'))
  // 3. bob's mailbox locked by another reader.
  const bobBox = path.join(app.mailDir, 'ours.example', 'bob')
  await fs.writeFile(`${bobBox}.lock`, `${process.pid}\n`)

  const escapes = ['../../etc/x@ours.example', 'a/../../b@ours.example', '..@ours.example', 'x/y@ours.example', '%2e%2e@ours.example']
  const escapeReplies = await Promise.all(escapes.map((a) => send(port, a, 'escape')))
  const replies = {
    alice: await send(port, 'alice@ours.example', 'through a file symlink'),
    carol: await send(port, 'carol@second.example', 'through a directory symlink'),
    bob: await send(port, 'bob@ours.example', 'locked mailbox'),
  }
  // Delivery has had time for several attempts.
  await new Promise((r) => setTimeout(r, 4000))
  const passwdAfter = await fs.readFile(passwdCopy, 'utf8')
  const outsideAfter = await fs.readdir(outsideDir)
  const bobWhileLocked = (await readMbox(bobBox)).length
  const bobQueued = (await spoolEnvelopes(app.spoolDir)).filter((e) => e.recipients.some((r) => r.address === 'bob@ours.example')).length
  await fs.rm(`${bobBox}.lock`)
  const bobDelivered = await until(async () => (await readMbox(bobBox)).length === 1, 20_000)
  const bobFinal = (await readMbox(bobBox)).length
  const aliceEnv = (await spoolEnvelopes(app.spoolDir)).find((e) => e.recipients.some((r) => r.address === 'alice@ours.example'))
  const log = app.output()
  const restarts = await totalRestarts(app)
  await mem.stop()
  record({
    test: 'mailbox safety (mailbox-safety.test.ts)',
    load: `${escapes.length} escaping local parts; 3 messages: to a symlinked mbox, a symlinked %d directory, a dotlocked mbox`,
    injected: `MAIL_DIR/ours.example/alice -> a file outside, MAIL_DIR/second.example -> a directory outside, bob.lock held by the test`,
    sent: 3 + escapes.length,
    accepted: Object.values(replies).filter((r) => r.startsWith('250')).length,
    delivered: bobFinal,
    restarts,
    peakRssMiB: mem.max(),
    result: `escapes: ${escapeReplies.map((r) => r.slice(0, 9).trim()).join(', ')}; file outside ${passwdAfter === 'root:x:0:0:root:/root:/bin/bash\n' ? 'unchanged' : 'CHANGED'}, directory outside holds ${outsideAfter.length} entries; alice ${aliceEnv ? `still queued (${aliceEnv.recipients[0].status})` : 'not queued (bounced or failed)'}; bob: ${bobWhileLocked} in the mbox while locked (${bobQueued} waiting in the spool), ${bobFinal} after the lock went`,
    durationS: Math.round((Date.now() - started) / 1000),
  })
  t.diagnostic(
    log
      .split('\n')
      .filter((l) => /alice|carol|symlink|ELOOP|lock/i.test(l))
      .slice(-6)
      .join('\n'),
  )
  for (const r of escapeReplies) assert.match(r, /^5\d\d /)
  assert.equal(passwdAfter, 'root:x:0:0:root:/root:/bin/bash\n', 'nothing written through the file symlink')
  assert.deepEqual(outsideAfter, [], 'nothing written through the directory symlink')
  assert.equal(bobWhileLocked, 0, 'no delivery under a held dotlock')
  assert.ok(bobDelivered, 'delivered once the lock was released')
  assert.equal(bobFinal, 1)
  assert.equal(restarts, 0)
})

/** Every path below `root` (lstat: symlinks are not followed) with its type and size. */
async function tree(root: string, skip: string[] = []): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const walk = async (dir: string): Promise<void> => {
    let names: string[]
    try {
      names = await fs.readdir(dir)
    } catch {
      return
    }
    for (const n of names) {
      const p = path.join(dir, n)
      if (skip.includes(p)) continue
      const st = await fs.lstat(p).catch(() => null)
      if (!st) continue
      out.set(p, st.isSymbolicLink() ? `link->${await fs.readlink(p)}` : st.isDirectory() ? 'dir' : `file:${st.size}`)
      if (st.isDirectory()) await walk(p)
    }
  }
  await walk(root)
  return out
}

/** The DSNs in a Maildir, as recipient -> `Status Diagnostic-Code` of each report naming it. */
async function bounces(maildir: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>()
  for (const m of await readMaildir(maildir))
    for (const block of m.split(/\n\n/)) {
      const rcpt = /^Final-Recipient: rfc822; (.+)$/m.exec(block)?.[1]
      if (rcpt)
        out.set(rcpt, [
          ...(out.get(rcpt) ?? []),
          `${/^Status: (\S+)/m.exec(block)?.[1]} ${/^Diagnostic-Code: smtp; (.*)$/m.exec(block)?.[1] ?? ''}`,
        ])
    }
  return out
}

test(
  'Maildir: escaping names and folders, symlinked Maildir, tmp/, new/, cur/ and .Junk get nothing written outside the mailbox; a broken new/ defers until repaired',
  { timeout: 150_000 },
  async (t) => {
    const started = Date.now()
    const marker = `facteur-escape-${process.pid}`
    const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-outside-'))
    const immutable: string[] = []
    t.after(async () => {
      for (const d of immutable) await run('chattr', ['-i', d]).catch(() => undefined)
      await fs.rm(outside, { recursive: true, force: true })
    })
    // Targets outside MAIL_DIR: a whole Maildir, an empty directory, plain directories, a file.
    for (const sub of ['tmp', 'new', 'cur']) await fs.mkdir(path.join(outside, 'maildir', sub), { recursive: true })
    for (const d of ['empty', 'tmp-target', 'new-target', 'cur-target', 'junk-target']) await fs.mkdir(path.join(outside, d))
    const secret = path.join(outside, 'secret')
    await fs.writeFile(secret, 'do not touch\n', { mode: 0o600 })

    const planted = ['m1', 'm2', 'm3', 't1', 't2', 'n1', 'c1', 'j1', 'j2', 'f1', 'u1']
    const users = Object.fromEntries(['sam', 'bob', 'okay', 'multi', ...planted].map((u) => [`${u}@ours.example`, 'pw']))
    const app = await startAppliance({
      timeoutMs: 90_000,
      users,
      env: { MAILBOX_FORMAT: 'maildir', QUEUE_RETRY_MIN: '1s', QUEUE_RETRY_MAX: '2s' },
    })
    t.after(() => app.stop())
    const mem = sampleMemory(app)
    const port = app.port('smtp-ingress', 'smtp')
    const box = (u: string): string => path.join(app.mailDir, u)
    const maildir = async (u: string, subs = ['tmp', 'new', 'cur']): Promise<void> => {
      for (const s of subs) await fs.mkdir(path.join(box(u), s), { recursive: true })
    }
    await maildir('bob')
    // The Maildir itself: to a Maildir outside, to an empty directory outside, to bob's Maildir.
    await fs.symlink(path.join(outside, 'maildir'), box('m1'))
    await fs.symlink(path.join(outside, 'empty'), box('m2'))
    await fs.symlink(box('bob'), box('m3'))
    // tmp/ to a directory outside, and dangling; new/ and cur/ to directories outside.
    await maildir('t1', ['new', 'cur'])
    await fs.symlink(path.join(outside, 'tmp-target'), path.join(box('t1'), 'tmp'))
    await maildir('t2', ['new', 'cur'])
    await fs.symlink(path.join(outside, 'not-yet'), path.join(box('t2'), 'tmp'))
    await maildir('n1', ['tmp', 'cur'])
    await fs.symlink(path.join(outside, 'new-target'), path.join(box('n1'), 'new'))
    await maildir('c1', ['tmp', 'new'])
    await fs.symlink(path.join(outside, 'cur-target'), path.join(box('c1'), 'cur'))
    // .Junk to a directory outside; a real .Junk whose maildirfolder marker points at a file outside.
    await maildir('j1')
    await fs.symlink(path.join(outside, 'junk-target'), path.join(box('j1'), '.Junk'))
    await maildir('j2')
    for (const s of ['tmp', 'new', 'cur']) await fs.mkdir(path.join(box('j2'), '.Junk', s), { recursive: true })
    await fs.symlink(secret, path.join(box('j2'), '.Junk', 'maildirfolder'))
    // new/ is a file; new/ cannot be written (immutable: root ignores permission bits).
    await maildir('f1', ['tmp', 'cur'])
    await fs.writeFile(path.join(box('f1'), 'new'), 'not a directory\n')
    await maildir('u1')
    const u1new = path.join(box('u1'), 'new')
    const locked = isRoot() ? (await run('chattr', ['+i', u1new])).code === 0 : (await fs.chmod(u1new, 0o555), true)
    if (isRoot() && locked) immutable.push(u1new)

    const before = await tree(app.dir, [app.spoolDir, app.configDir])
    const outsideBefore = await tree(outside)
    const tmpBefore = (await fs.readdir(os.tmpdir())).filter((n) => n.includes(marker))

    // 1. Names that would leave MAIL_DIR, at RCPT on :25.
    const long = 'a'.repeat(300)
    const wireEscapes = [
      `../${marker}@ours.example`,
      `..%2f..%2f${marker}@ours.example`,
      `%2e%2e@ours.example`,
      `.Junk@ours.example`,
      `bob/.Junk@ours.example`,
      `okay/../bob@ours.example`,
      `${long}@ours.example`,
      `nul\x00x@ours.example`,
      `back\\slash@ours.example`,
    ]
    const wireReplies = await Promise.all(wireEscapes.map((a) => send(port, a, 'escape')))

    // 2. The same names and folder tricks straight into the spool: delivery's own defence.
    const spool = await openSpool(app.spoolDir)
    const inject = async (address: string | string[], subject: string, folder?: string): Promise<void> => {
      await spool.enqueue(Buffer.from(`From: <sam@ours.example>\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n`), {
        sender: 'sam@ours.example',
        recipients: [address].flat().map((a) => ({ address: a, original: a, status: 'pending' as const, attempts: 0 })),
        receivedAt: Date.now(),
        nextAttempt: 0,
        client: { ip: '127.0.0.1', helo: 'test', tls: false },
        source: 'smtp-ingress',
        ...(folder !== undefined && { folder }),
      })
    }
    const spoolEscapes = [
      `../${marker}@ours.example`,
      `../../${marker}@ours.example`,
      `a/../../${marker}@ours.example`,
      `..@ours.example`,
      `.@ours.example`,
      `.hidden@ours.example`,
      `nul\x00x@ours.example`,
      `${long}@ours.example`,
    ]
    for (const a of spoolEscapes) await inject(a, 'spool escape')
    // Folder names: `.` + folder must stay a folder of this Maildir.
    const folderTricks = ['.', '/../bob', '/../../' + marker, '../bob', 'a/b']
    for (const [i, f] of folderTricks.entries()) await inject(`okay@ours.example`, `folder trick ${i}`, f)

    // 3. Planted symlinks and broken Maildirs, through :25 (and into .Junk through the spool).
    const accepted: Record<string, string> = {}
    for (const u of ['m1', 'm2', 'm3', 't1', 't2', 'n1', 'c1', 'f1', 'u1'])
      accepted[u] = await send(port, `${u}@ours.example`, `to ${u}`, 'sam@ours.example')
    for (const u of ['j1', 'j2']) await inject(`${u}@ours.example`, `junk for ${u}`, 'Junk')
    accepted.okay = await send(port, 'okay@ours.example', 'control', 'sam@ours.example')
    // The planted Maildirs again, as recipients of one message with a control (one file for all,
    // hard-linked into each new/): each refused as when alone; and into .Junk.
    const atOnce = ['m1', 'm2', 'm3', 't1', 't2', 'n1', 'c1']
    await inject(
      [...atOnce, 'multi'].map((u) => `${u}@ours.example`),
      'all at once',
    )
    await inject(
      ['j1', 'j2', 'multi'].map((u) => `${u}@ours.example`),
      'junk at once',
      'Junk',
    )

    // Every permanent failure comes back to sam as a DSN; f1 and u1 stay deferred in the spool.
    const permanent = [...spoolEscapes, ...['m1', 'm2', 'm3', 't1', 't2', 'n1', 'c1', 'j1', 'j2'].map((u) => `${u}@ours.example`)]
    let got: Map<string, string[]> = new Map()
    const bounced = await until(async () => {
      got = await bounces(box('sam'))
      return (
        permanent.every((a) => got.has(a)) &&
        (got.get('okay@ours.example')?.length ?? 0) >= folderTricks.length &&
        [...atOnce, 'j1', 'j2'].every((u) => (got.get(`${u}@ours.example`)?.length ?? 0) >= 2)
      )
    }, 60_000)
    const deferred = async (u: string): Promise<string | undefined> => {
      const e = (await spoolEnvelopes(app.spoolDir)).find((x) => x.recipients.some((r) => r.address === `${u}@ours.example`))
      return e?.recipients[0].status
    }
    // chattr +i needs a file system that has it (ext4, xfs; not tmpfs or overlayfs): else u1 is an ordinary Maildir.
    const waitDeferred = await until(
      async () => (await deferred('f1')) === 'deferred' && (!locked || (await deferred('u1')) === 'deferred'),
      20_000,
    )
    const fState = await deferred('f1')
    const uState = await deferred('u1')
    const outsideAfter = await tree(outside)
    const after = await tree(app.dir, [app.spoolDir, app.configDir])
    const tmpAfter = (await fs.readdir(os.tmpdir())).filter((n) => n.includes(marker))
    const secretAfter = await fs.readFile(secret, 'utf8')
    const secretMode = (await fs.stat(secret)).mode & 0o777

    // Repair f1 and u1: both messages are delivered, nothing was lost.
    await fs.rm(path.join(box('f1'), 'new'))
    await fs.mkdir(path.join(box('f1'), 'new'))
    if (isRoot()) await run('chattr', ['-i', u1new])
    else await fs.chmod(u1new, 0o700)
    const repaired = await until(
      async () => (await readMaildir(box('f1'))).length === 1 && (await readMaildir(box('u1'))).length === 1,
      30_000,
    )

    // What changed around MAIL_DIR: only the mailboxes that were meant to receive.
    const allowed = ['sam', 'okay', 'multi', 'f1', 'u1'].map((u) => box(u))
    const strays = [...after.keys()].filter((p) => !before.has(p) && !allowed.some((a) => p === a || p.startsWith(a + path.sep)))
    const changedOutside = [...outsideAfter].filter(([p, v]) => outsideBefore.get(p) !== v).map(([p]) => p)
    const bobGot = (await readMaildir(box('bob'))).length
    const okayFolders = (await fs.readdir(box('okay'))).filter((n) => n.startsWith('.'))
    const multiGot = [(await readMaildir(box('multi'))).length, (await readMaildir(path.join(box('multi'), '.Junk'))).length]
    const restarts = await totalRestarts(app)
    await mem.stop()
    const codes = (list: string[]): string => list.map((a) => (got.get(a)?.[0] ?? 'none').split(' ')[0]).join(', ')
    record({
      test: 'Maildir mailbox safety (mailbox-safety.test.ts)',
      load: `${wireEscapes.length} escaping local parts at RCPT; ${spoolEscapes.length} escaping names and ${folderTricks.length} folder names injected into the spool; 11 messages to planted Maildirs; 1 control; 2 messages to 7 and 2 planted Maildirs with a control each`,
      injected:
        'symlinks for the Maildir (to a Maildir outside, an empty directory outside, another user’s Maildir), tmp/ (outside, dangling), new/, cur/, .Junk, .Junk/maildirfolder (to a file outside); new/ a file; new/ immutable',
      sent: wireEscapes.length + spoolEscapes.length + folderTricks.length + 14,
      accepted: Object.values(accepted).filter((r) => r.startsWith('250')).length + spoolEscapes.length + folderTricks.length + 4,
      delivered:
        (await readMaildir(box('okay'))).length +
        multiGot[0] +
        multiGot[1] +
        (await readMaildir(box('f1'))).length +
        (await readMaildir(box('u1'))).length,
      lost: permanent.filter((a) => !got.has(a)).length,
      restarts,
      peakRssMiB: mem.max(),
      result: `RCPT: ${wireReplies.map((r) => r.slice(0, 9).trim()).join(', ')}; DSN status for spool escapes ${codes(spoolEscapes)}, for folder names ${(got.get('okay@ours.example') ?? []).map((b) => b.split(' ')[0]).join(', ')}, for planted Maildirs ${codes(['m1', 'm2', 'm3', 't1', 't2', 'n1', 'c1', 'j1', 'j2'].map((u) => `${u}@ours.example`))}; new/ a file: ${fState}, new/ immutable: ${locked ? uState : 'not tried (chattr +i failed here)'}, both delivered after repair: ${repaired}; paths written outside the mailboxes: ${strays.length + changedOutside.length + tmpAfter.length - tmpBefore.length}; another user's Maildir got ${bobGot}; the controls of the messages to several got ${multiGot.join(' and ')}`,
      durationS: Math.round((Date.now() - started) / 1000),
    })
    t.diagnostic(`bounces: ${JSON.stringify(Object.fromEntries(got))}`)
    for (const [i, r] of wireReplies.entries()) assert.match(r, /^5\d\d /, `RCPT ${JSON.stringify(wireEscapes[i])}`)
    assert.ok(bounced, `every permanent failure bounced to the sender; missing: ${permanent.filter((a) => !got.has(a)).join(', ')}`)
    for (const a of [...permanent, 'okay@ours.example'])
      for (const b of got.get(a) ?? ['none']) assert.match(b, /^5\.\d+\.\d+ 55\d 5\./, `DSN for ${a}`)
    assert.deepEqual(strays, [], 'nothing new in MAIL_DIR outside the receiving mailboxes')
    assert.deepEqual(changedOutside, [], 'nothing changed outside MAIL_DIR')
    assert.deepEqual(tmpAfter, tmpBefore, 'nothing made next to the temp directories')
    assert.equal(secretAfter, 'do not touch\n')
    assert.equal(secretMode, 0o600)
    assert.equal(bobGot, 0, 'nothing delivered into another user’s Maildir')
    assert.ok(waitDeferred, 'new/ a file or unwritable: deferred')
    assert.ok(repaired, 'delivered once new/ was repaired')
    assert.deepEqual(okayFolders, [], 'folder tricks made no folder')
    assert.equal((await readMaildir(box('okay'))).length, 1, 'only the control message reached okay')
    assert.deepEqual(multiGot, [1, 1], 'the control of the messages to several got each, the second in .Junk')
    assert.equal(restarts, 0)
  },
)
