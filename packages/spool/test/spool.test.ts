// The message file on disk: one file per message, its envelope appended at its end; an append
// cut short falls back to the envelope before it; a spool of the two-file layout is converted.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { openSpool } from '@facteur/spool'
import { envelopeDraft } from '../../../test/support/queue.js'

const draft = (): ReturnType<typeof envelopeDraft> => envelopeDraft({ to: 'alice@ours.example', sender: 'a@remote.example' })
// A message that carries a forged trailer of its own: only our appended envelopes count.
const body = 'Subject: hi\r\n\r\n{"version":1}\nFACTEUR-ENVELOPE 000000000000 0000000013\n'

async function spoolDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-spool-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

test('a committed message is one file in queue/: its bytes, then its envelope', async (t) => {
  const dir = await spoolDir(t)
  const spool = await openSpool(dir)
  const e = await spool.enqueue(Buffer.from(body), draft())
  assert.deepEqual(await fs.readdir(path.join(dir, 'queue')), [e.id])
  assert.deepEqual(await fs.readdir(path.join(dir, 'data')), [])
  const file = await fs.readFile(path.join(dir, 'queue', e.id), 'latin1')
  assert.ok(file.startsWith(body))
  assert.equal(e.size, body.length)
  assert.equal((await spool.content(e.id))?.toString('latin1'), body)
  const [id] = await spool.due()
  const active = (await spool.claim(id))!
  assert.equal((await active.read()).toString('latin1'), `${draft().prepend}${body}`)
  let streamed = ''
  for await (const chunk of active.open()) streamed += (chunk as Buffer).toString('latin1')
  assert.equal(streamed, `${draft().prepend}${body}`)
  await active.finish()
  assert.equal(await spool.depth(), 0)
})

test('a later envelope is appended; one cut short leaves the one before it in force', async (t) => {
  const dir = await spoolDir(t)
  const spool = await openSpool(dir)
  const e = await spool.enqueue(Buffer.from(body), draft())
  const active = (await spool.claim(e.id))!
  active.envelope.recipients[0].status = 'deferred'
  active.envelope.recipients[0].lastError = '451 4.2.0 line one\nline two'
  await active.save()
  const later = Date.now() + 60_000
  await active.release(later)
  const [entry] = await spool.list()
  assert.equal(entry.envelope.recipients[0].status, 'deferred')
  assert.equal(entry.envelope.nextAttempt, later)
  // A crash in the middle of the next append: half an envelope, or a whole trailer over torn JSON.
  const file = path.join(dir, 'queue', e.id)
  await fs.appendFile(file, '{"version":1,"id":"')
  assert.equal((await spool.list())[0].envelope.nextAttempt, later)
  await fs.appendFile(file, '\nFACTEUR-ENVELOPE 000000000000 0000000019\n')
  assert.equal((await spool.list())[0].envelope.nextAttempt, later)
  assert.equal((await spool.content(e.id))?.toString('latin1'), body)
  assert.deepEqual(await spool.due(), [])
  // Released from hold: due now, and the next append still reads back.
  assert.equal(await spool.hold(e.id), true)
  assert.equal(await spool.release(e.id), true)
  assert.deepEqual(await spool.due(), [e.id])
})

test('a flush by another process (mailctl): due() lists the flushed message once the flush request is taken, and forget() drops a remembered next attempt', async (t) => {
  const dir = await spoolDir(t)
  const delivery = await openSpool(dir)
  const mailctl = await openSpool(dir)
  const e = await delivery.enqueue(Buffer.from(body), draft())
  const active = (await delivery.claim(e.id))!
  await active.release(Date.now() + 300_000)
  assert.deepEqual(await delivery.due(), [])
  assert.equal(await delivery.takeFlushRequest(), false, 'no flush asked yet')
  // Delivery remembers the next attempt it set; the flush appends another in the other process.
  assert.equal(await mailctl.flush(), 1)
  assert.deepEqual(await delivery.due(), [], 'judged by the next attempt remembered')
  assert.equal(await delivery.takeFlushRequest(), true)
  assert.deepEqual(await delivery.due(), [e.id])
  assert.equal(await delivery.takeFlushRequest(), false)
  // Held and released by mailctl: the name seen landing is forgotten, then read afresh.
  const again = (await delivery.claim(e.id))!
  await again.release(Date.now() + 300_000)
  assert.deepEqual(await delivery.due(), [])
  assert.equal(await mailctl.hold(e.id), true)
  assert.equal(await mailctl.release(e.id), true)
  assert.deepEqual(await delivery.due(), [])
  delivery.forget([e.id])
  assert.deepEqual(await delivery.due(), [e.id])
})

test('a message retried many times: the envelopes after it are compacted to the newest, its bytes untouched', async (t) => {
  const dir = await spoolDir(t)
  const spool = await openSpool(dir)
  const e = await spool.enqueue(Buffer.from(body), draft())
  const file = path.join(dir, 'queue', e.id)
  const sizes: number[] = []
  for (let attempt = 1; attempt <= 300; attempt++) {
    const active = (await spool.claim(e.id))!
    active.envelope.recipients[0].status = 'deferred'
    active.envelope.recipients[0].attempts = attempt
    active.envelope.recipients[0].lastError = `451 4.4.1 attempt ${attempt}: ${'x'.repeat(200)}`
    await active.save()
    await active.release(0)
    sizes.push((await fs.stat(file)).size)
  }
  // Without compaction 300 envelopes of about 600 bytes would be some 180 KB.
  assert.ok(Math.max(...sizes) < body.length + 64 * 1024 + 2048, `largest ${Math.max(...sizes)}`)
  assert.ok(
    sizes.some((s, i) => i > 0 && s < sizes[i - 1]),
    'compacted at least once',
  )
  const [entry] = await spool.list()
  assert.equal(entry.envelope.recipients[0].attempts, 300)
  assert.match(entry.envelope.recipients[0].lastError ?? '', /^451 4\.4\.1 attempt 300: /)
  assert.equal((await spool.content(e.id))?.toString('latin1'), body)
  const active = (await spool.claim(e.id))!
  assert.equal((await active.read()).toString('latin1'), `${draft().prepend}${body}`)
  await active.finish()
  assert.deepEqual(await fs.readdir(path.join(dir, 'tmp')), [], 'no copy left behind')
})

test('recover() converts a spool of the two-file layout (queue/ID.json beside data/ID)', async (t) => {
  const dir = await spoolDir(t)
  const spool = await openSpool(dir)
  const id = '0123456789ABCDEF01234'
  await fs.writeFile(path.join(dir, 'data', id), body)
  await fs.writeFile(path.join(dir, 'hold', `${id}.json`), JSON.stringify({ version: 1, id, size: body.length, ...draft() }))
  assert.deepEqual(await spool.recover(), { requeued: 0, removed: 0, converted: 1 })
  assert.deepEqual(await fs.readdir(path.join(dir, 'hold')), [id])
  assert.deepEqual(await fs.readdir(path.join(dir, 'data')), [])
  assert.equal((await spool.list())[0].state, 'hold')
  assert.equal((await spool.content(id))?.toString('latin1'), body)
})

/** Enqueues `message`, claims it and finishes it: its file goes to spare/ (or away). */
async function deliverOne(spool: Awaited<ReturnType<typeof openSpool>>, message: Buffer): Promise<string> {
  const e = await spool.enqueue(message, draft())
  const active = (await spool.claim(e.id))!
  await active.finish()
  return e.id
}

test('a delivered message leaves its file in spare/; the next message reuses it, cut to its own length', async (t) => {
  const dir = await spoolDir(t)
  const spool = await openSpool(dir)
  const long = Buffer.from(body + 'x'.repeat(10_000) + '\nFACTEUR-ENVELOPE 000000000000 0000000013\n')
  const old = await deliverOne(spool, long)
  assert.deepEqual(await fs.readdir(path.join(dir, 'spare')), [old])
  assert.equal(await spool.depth(), 0)
  const inode = (await fs.stat(path.join(dir, 'spare', old))).ino
  // Another writer (a receiving service opens its own spool) takes it for a shorter message.
  const writer = await (await openSpool(dir)).begin()
  assert.deepEqual(await fs.readdir(path.join(dir, 'spare')), [])
  assert.equal((await fs.stat(writer.path)).ino, inode)
  await writer.write(Buffer.from(body))
  const e = await writer.commit(draft())
  const file = await fs.readFile(path.join(dir, 'queue', e.id), 'latin1')
  assert.ok(file.startsWith(body))
  assert.ok(!file.includes('xxx'), 'nothing of the old message is left')
  assert.equal((await spool.list())[0].envelope.id, e.id)
  assert.equal((await spool.content(e.id))?.toString('latin1'), body)
  const active = (await spool.claim(e.id))!
  assert.equal((await active.read()).toString('latin1'), `${draft().prepend}${body}`)
})

test('a writer that took every file of its listing of spare/ takes the next one delivered at once', async (t) => {
  const dir = await spoolDir(t)
  const spool = await openSpool(dir)
  const writer = await openSpool(dir)
  await deliverOne(spool, Buffer.from(body))
  await deliverOne(writer, Buffer.from(body)) // its begin() takes the one file listed
  // A message delivered meanwhile (less than the relisting pause of an empty spare/ later).
  const next = await deliverOne(spool, Buffer.from(body))
  // spare/ now holds that message's file and the writer's own (its finish() put it back): begin()
  // takes one of them at once, whichever its listing names last (readdir(3) order).
  const spare = await fs.readdir(path.join(dir, 'spare'))
  assert.ok(spare.includes(next), JSON.stringify(spare))
  const inodes = await Promise.all(spare.map(async (name) => (await fs.stat(path.join(dir, 'spare', name))).ino))
  const w = await writer.begin()
  assert.ok(inodes.includes((await fs.stat(w.path)).ino))
  assert.equal((await fs.readdir(path.join(dir, 'spare'))).length, spare.length - 1)
  await w.abort()
})

test('spare/ keeps small files only, and a bounded number of them', async (t) => {
  const dir = await spoolDir(t)
  const spool = await openSpool(dir)
  await deliverOne(spool, Buffer.alloc(200 * 1024, 'a'))
  assert.deepEqual(await fs.readdir(path.join(dir, 'spare')), [], 'a large file is deleted')
  // 300 messages received and delivered while no writer takes any spare: 256 are kept.
  const writers = await Promise.all(Array.from({ length: 300 }, () => spool.begin()))
  for (const w of writers) await w.write(Buffer.from(body))
  const ids = await Promise.all(writers.map((w) => w.commit(draft()).then((e) => e.id)))
  for (const id of ids) await (await spool.claim(id))!.finish()
  assert.equal((await fs.readdir(path.join(dir, 'spare'))).length, 256)
  assert.equal(await spool.depth(), 0)
})

test('a reused file is not taken for an old leftover by recover() while its message is received', async (t) => {
  const dir = await spoolDir(t)
  const spool = await openSpool(dir)
  const old = await deliverOne(spool, Buffer.from(body))
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000)
  await fs.utimes(path.join(dir, 'spare', old), twoHoursAgo, twoHoursAgo)
  const writer = await (await openSpool(dir)).begin()
  assert.deepEqual(await spool.recover(), { requeued: 0, removed: 0, converted: 0 })
  await writer.write(Buffer.from(body))
  const e = await writer.commit(draft())
  assert.equal((await spool.content(e.id))?.toString('latin1'), body)
})

test('a spare file that also has another name (a rename half kept by a power cut) is left alone', async (t) => {
  const dir = await spoolDir(t)
  const spool = await openSpool(dir)
  const e = await spool.enqueue(Buffer.from(body), draft())
  // As if finish()'s rename active/ -> spare/ had reached the disk while active/ kept its entry too.
  await fs.link(path.join(dir, 'queue', e.id), path.join(dir, 'spare', e.id))
  const writer = await (await openSpool(dir)).begin()
  await writer.write(Buffer.from('Subject: another\r\n\r\nother\r\n'))
  await writer.commit(draft())
  assert.deepEqual(await fs.readdir(path.join(dir, 'spare')), [], 'its spare name is removed')
  assert.equal((await spool.content(e.id))?.toString('latin1'), body, 'the queued message is intact')
  assert.equal((await fs.stat(path.join(dir, 'queue', e.id))).nlink, 1)
})
