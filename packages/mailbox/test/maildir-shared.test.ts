// deliverMaildirs: a message for several Maildirs is one file, fsync'd once and hard-linked into
// each new/ under a name of its own; a Maildir that cannot take the link (a symlink planted for
// it, another file system) is refused or gets a copy of its own, and the others are delivered.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { deliverMaildirs, HeldMessage, MailboxError } from '@facteur/mailbox'

const run = promisify(execFile)
const MESSAGE = Buffer.from('Subject: to three\r\n\r\nhello\r\n.dot line\r\n')
const STORED = 'Return-Path: <s@example.net>\nSubject: to three\n\nhello\n.dot line\n'

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-maildir-shared-'))
  t.after(() => fs.rm(root, { recursive: true, force: true }))
  const base = path.join(root, 'mail')
  await fs.mkdir(base)
  let copies = 0
  const deliver = (dirs: string[], message: Readable | HeldMessage = new HeldMessage(MESSAGE)) =>
    deliverMaildirs({
      targets: dirs.map((d) => ({ dir: path.join(base, d) })),
      base,
      owner: {},
      head: 'Return-Path: <s@example.net>\n',
      message,
      copy: () => (copies++, Readable.from([MESSAGE])),
    })
  const files = async (dir: string) => {
    const names = (await fs.readdir(path.join(base, dir, 'new'))).sort()
    return Promise.all(names.map(async (n) => ({ name: n, file: path.join(base, dir, 'new', n) })))
  }
  return { root, base, deliver, files, copies: () => copies }
}

test('three recipients, two of them one Maildir: one file, linked under three names, tmp/ left empty', async (t) => {
  const s = await setup(t)
  const results = await s.deliver(['alice', 'bob', 'alice'])
  assert.ok(
    results.every((r) => typeof r === 'string'),
    String(results),
  )
  assert.equal(new Set(results).size, 3, 'a name of its own for each link')
  const alice = await s.files('alice')
  const bob = await s.files('bob')
  assert.deepEqual(alice.map((f) => f.name).sort(), [results[0], results[2]].sort())
  assert.deepEqual(
    bob.map((f) => f.name),
    [results[1]],
  )
  const stats = await Promise.all([...alice, ...bob].map((f) => fs.stat(f.file)))
  assert.equal(new Set(stats.map((st) => st.ino)).size, 1, 'one inode')
  assert.ok(stats.every((st) => st.nlink === 3 && st.size === STORED.length))
  for (const r of results) assert.match(String(r), new RegExp(`,S=${STORED.length}$`))
  assert.equal(await fs.readFile(bob[0].file, 'utf8'), STORED)
  assert.deepEqual(await fs.readdir(path.join(s.base, 'alice', 'tmp')), [])
  assert.deepEqual(await fs.readdir(path.join(s.base, 'bob', 'tmp')), [])
  assert.equal(s.copies(), 0)
})

test('a streamed message (too large to hold) is read once for all', async (t) => {
  const s = await setup(t)
  const results = await s.deliver(['a', 'b'], Readable.from([MESSAGE.subarray(0, 5), MESSAGE.subarray(5)]))
  assert.ok(
    results.every((r) => typeof r === 'string'),
    String(results),
  )
  for (const d of ['a', 'b']) assert.equal(await fs.readFile((await s.files(d))[0].file, 'utf8'), STORED)
  assert.equal(s.copies(), 0)
})

test('a Maildir symlinked elsewhere is refused; the other recipients get their link', async (t) => {
  const s = await setup(t)
  const outside = path.join(s.root, 'outside')
  await fs.mkdir(outside)
  await fs.symlink(outside, path.join(s.base, 'mallory'))
  const [alice, mallory, bob] = await s.deliver(['alice', 'mallory', 'bob'])
  assert.ok(mallory instanceof MailboxError && !mallory.temporary, String(mallory))
  assert.match(mallory.message, /symlink/)
  assert.deepEqual(await fs.readdir(outside), [])
  assert.equal(typeof alice, 'string')
  assert.equal(typeof bob, 'string')
  assert.equal((await fs.stat((await s.files('bob'))[0].file)).nlink, 2)
})

test('every Maildir refused: each says why, nothing is written', async (t) => {
  const s = await setup(t)
  await fs.writeFile(path.join(s.base, 'file'), 'x')
  const results = await s.deliver(['file', '../out'])
  assert.ok(
    results.every((r) => r instanceof MailboxError),
    String(results),
  )
  assert.deepEqual((await fs.readdir(s.base)).sort(), ['file'])
})

test('a Maildir on another file system (a tmpfs mounted in MAIL_DIR) gets a copy of its own', async (t) => {
  const s = await setup(t)
  const mount = path.join(s.base, 'carol')
  await fs.mkdir(mount)
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount])
  } catch (err) {
    t.skip(`cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]})`)
    return
  }
  // Unmounted before setup's cleanup removes the directory.
  try {
    const results = await s.deliver(['alice', 'carol'])
    assert.ok(
      results.every((r) => typeof r === 'string'),
      String(results),
    )
    const [a] = await s.files('alice')
    const [c] = await s.files('carol')
    assert.equal(await fs.readFile(c.file, 'utf8'), STORED)
    assert.notEqual((await fs.stat(a.file)).dev, (await fs.stat(c.file)).dev)
    assert.equal((await fs.stat(a.file)).nlink, 1)
    assert.equal(s.copies(), 1)
  } finally {
    await run('umount', [mount])
  }
})

test('300 recipients: one file with 300 links, new Maildirs made on the way', async (t) => {
  const s = await setup(t)
  const dirs = Array.from({ length: 300 }, (_, i) => `domain${i % 3}/user${i}`)
  const results = await s.deliver(dirs)
  assert.equal(results.filter((r) => typeof r === 'string').length, 300, String(results.find((r) => typeof r !== 'string')))
  const inodes = new Set<number>()
  for (const d of dirs) {
    const [f] = await s.files(d)
    const st = await fs.stat(f.file)
    assert.equal(st.nlink, 300)
    inodes.add(st.ino)
  }
  assert.equal(inodes.size, 1)
})
