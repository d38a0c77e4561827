// The mbox writer's group commit: appends to one mailbox that arrive together are written under
// one lock and one fsync, each whole and once; one whose message fails is cut back alone; none is
// answered while the lock (whose journal could still cut it back) is there.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { appendMbox, type MboxAppend } from '../src/mbox.js'
import { readMbox } from '../../../test/support/mbox.js'

const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }

async function mailDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-mbox-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

function append(base: string, n: number, message: Readable | AsyncIterable<Buffer> = Readable.from([body(n)])): MboxAppend {
  return {
    file: path.join(base, 'alice'),
    base,
    owner,
    sender: `s${n}@example.net`,
    receivedAt: new Date(0),
    head: `Delivered-To: alice@example.com\n`,
    message,
  }
}

const body = (n: number): Buffer => Buffer.from(`Subject: ${n}\r\n\r\n${`line of message ${n}\r\n`.repeat(50)}`)

test('50 appends to one mailbox at once: each message whole, once, and the lock gone when each is answered', async (t) => {
  const base = await mailDir(t)
  const lock = path.join(base, 'alice.lock')
  await Promise.all(
    Array.from({ length: 50 }, async (_, n) => {
      await appendMbox(append(base, n))
      await assert.rejects(fs.access(lock), 'answered while the lock was still there')
    }),
  )
  const messages = await readMbox(path.join(base, 'alice'))
  assert.equal(messages.length, 50)
  const subjects = messages.map((m) => /Subject: (\d+)/.exec(m)![1]).sort((a, b) => Number(a) - Number(b))
  assert.deepEqual(
    subjects,
    Array.from({ length: 50 }, (_, n) => String(n)),
  )
  for (const m of messages) {
    const n = /Subject: (\d+)/.exec(m)![1]
    assert.equal(m, `Delivered-To: alice@example.com\nSubject: ${n}\n\n${`line of message ${n}\n`.repeat(50)}`)
  }
})

test('a message that fails half-way through its group is cut back alone; the others stay whole', async (t) => {
  const base = await mailDir(t)
  // Half a message, then its spool file "fails" (a read error).
  const broken = (async function* () {
    yield Buffer.from('Subject: broken\r\n\r\nthe first half\r\n')
    await new Promise((r) => setTimeout(r, 10))
    throw new Error('read error in the spool file')
  })()
  const results = await Promise.allSettled([
    appendMbox(append(base, 1)),
    appendMbox(append(base, 2)),
    appendMbox(append(base, 3, broken)),
    appendMbox(append(base, 4)),
  ])
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
  )
  assert.match(String((results[2] as PromiseRejectedResult).reason), /read error in the spool file/)
  const text = await fs.readFile(path.join(base, 'alice'), 'latin1')
  assert.doesNotMatch(text, /broken|first half/)
  assert.deepEqual(
    (await readMbox(path.join(base, 'alice'))).map((m) => /Subject: (\d+)/.exec(m)![1]),
    ['1', '2', '4'],
  )
})

test('appends that arrive together share the fsyncs: fewer fsync calls than messages (strace)', async (t) => {
  if (spawnSync('strace', ['-V']).status !== 0) return t.skip('strace is not installed')
  const base = await mailDir(t)
  const n = 40
  // A child process makes the appends under strace, which counts its fsync calls.
  const script = `
    import { appendMbox } from ${JSON.stringify(fileURLToPath(new URL('../src/mbox.ts', import.meta.url)))}
    import { Readable } from 'node:stream'
    const base = ${JSON.stringify(base)}
    await Promise.all(Array.from({ length: ${n} }, (_, i) => appendMbox({ file: base + '/alice', base, owner: { uid: ${owner.uid}, gid: ${owner.gid} },
      sender: 'x@example.net', receivedAt: new Date(0), head: '', message: Readable.from([Buffer.from('Subject: ' + i + '\\r\\n\\r\\nbody\\r\\n')]) })))
  `
  const r = spawnSync(
    'strace',
    ['-f', '-qq', '-e', 'trace=fsync', process.execPath, '--import', 'tsx', '--conditions=source', '--input-type=module', '-e', script],
    {
      encoding: 'utf8',
    },
  )
  assert.equal(r.status, 0, r.stderr)
  const fsyncs = r.stderr.split('\n').filter((l) => /fsync\(/.test(l)).length
  assert.equal((await readMbox(path.join(base, 'alice'))).length, n)
  // One lock, one fsync each, would be 3 fsyncs a message (the lock's two journal files, the mailbox).
  assert.ok(fsyncs < n, `${fsyncs} fsync calls for ${n} appends`)
})
