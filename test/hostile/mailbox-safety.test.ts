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
import { readMbox } from '../support/mbox.js'
import { Wire } from './wire.js'
import { record, sampleMemory, spoolEnvelopes, totalRestarts } from './figures.js'

async function send(port: number, rcpt: string, subject: string): Promise<string> {
  const w = await Wire.open(port)
  try {
    await w.send('EHLO safe.example')
    await w.send('MAIL FROM:<s@remote.example>')
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
