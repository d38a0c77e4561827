// deliverMaildir never writes outside its own Maildir: not through a symlink planted for the
// Maildir, tmp/, new/, cur/ or a folder (to a directory outside MAIL_DIR or to another user's Maildir), not
// through a folder name that climbs out, not into a maildirfolder marker that is a symlink.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { deliverMaildir, MailboxError } from '@facteur/mailbox'

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-maildir-safety-'))
  t.after(() => fs.rm(root, { recursive: true, force: true }))
  const base = path.join(root, 'mail')
  const outside = path.join(root, 'outside')
  await fs.mkdir(path.join(outside, 'empty'), { recursive: true })
  for (const s of ['tmp', 'new', 'cur']) await fs.mkdir(path.join(base, 'bob', s), { recursive: true })
  const deliver = (dir: string, folder?: string) =>
    deliverMaildir({
      dir: path.join(base, dir),
      base,
      owner: {},
      folder,
      head: 'X-Test: 1\n',
      message: Readable.from([Buffer.from('hi\r\n')]),
    })
  const refused = async (p: Promise<unknown>, temporary = false): Promise<string> => {
    const err = await p.then(
      () => assert.fail('delivered'),
      (e: unknown) => e,
    )
    assert.ok(err instanceof MailboxError, String(err))
    assert.equal(err.temporary, temporary, err.message)
    return err.message
  }
  const entries = async (dir: string) => (await fs.readdir(dir, { recursive: true })).sort()
  return { base, outside, deliver, refused, entries }
}

test('a Maildir symlinked to an empty directory outside: refused, no directory made there', async (t) => {
  const s = await setup(t)
  await fs.symlink(path.join(s.outside, 'empty'), path.join(s.base, 'm2'))
  assert.match(await s.refused(s.deliver('m2')), /is a symlink/)
  assert.deepEqual(await s.entries(path.join(s.outside, 'empty')), [])
})

test("a Maildir symlinked to another user's Maildir inside MAIL_DIR: refused, nothing delivered there", async (t) => {
  const s = await setup(t)
  await fs.symlink(path.join(s.base, 'bob'), path.join(s.base, 'm3'))
  assert.match(await s.refused(s.deliver('m3')), /symlink/)
  assert.deepEqual(await fs.readdir(path.join(s.base, 'bob', 'new')), [])
})

test('a dangling tmp/ symlink is refused, the target is not created', async (t) => {
  const s = await setup(t)
  for (const sub of ['new', 'cur']) await fs.mkdir(path.join(s.base, 't2', sub), { recursive: true })
  await fs.symlink(path.join(s.outside, 'later'), path.join(s.base, 't2', 'tmp'))
  await s.refused(s.deliver('t2'))
  assert.deepEqual(await s.entries(s.outside), ['empty'])
})

test("new/ or cur/ symlinked to another user's (tmp/ real): refused, nothing delivered there, after a clean delivery", async (t) => {
  // The directories after tmp/ are checked by an lstat once tmp/'s real path is known (paths.ts):
  // a symlink there must still be refused, with the full check's message.
  const s = await setup(t)
  for (const sub of ['new', 'cur']) {
    const dir = `n-${sub}`
    assert.match(await s.deliver(dir), /,S=\d+$/) // made and checked whole first
    await fs.rm(path.join(s.base, dir, sub), { recursive: true })
    await fs.symlink(path.join(s.base, 'bob', sub), path.join(s.base, dir, sub))
    assert.match(await s.refused(s.deliver(dir)), /resolves to .*\(a symlink\?\)/)
  }
  assert.deepEqual(await fs.readdir(path.join(s.base, 'bob', 'new')), [])
  assert.deepEqual(await fs.readdir(path.join(s.base, 'bob', 'tmp')), [])
})

test('folder names that climb out of the Maildir are refused', async (t) => {
  const s = await setup(t)
  for (const f of ['.', '..', '/../bob', '../bob', 'a/b', '.Junk', 'x\0y'])
    assert.match(await s.refused(s.deliver('okay', f)), /folder name/)
  assert.deepEqual(await fs.readdir(path.join(s.base, 'bob', 'new')), [])
  assert.deepEqual(await fs.readdir(s.base), ['bob'])
  assert.match(await s.deliver('okay', 'Junk'), /,S=\d+$/)
  assert.equal((await fs.readdir(path.join(s.base, 'okay', '.Junk', 'new'))).length, 1)
})

test('a maildirfolder marker that is a symlink is neither followed nor written', async (t) => {
  const s = await setup(t)
  for (const sub of ['tmp', 'new', 'cur']) await fs.mkdir(path.join(s.base, 'j2', '.Junk', sub), { recursive: true })
  const secret = path.join(s.outside, 'secret')
  await fs.writeFile(secret, 'x', { mode: 0o600 })
  await fs.symlink(secret, path.join(s.base, 'j2', '.Junk', 'maildirfolder'))
  await s.refused(s.deliver('j2', 'Junk'))
  assert.equal(await fs.readFile(secret, 'utf8'), 'x')
  assert.deepEqual(await fs.readdir(path.join(s.base, 'j2', '.Junk', 'new')), [])
})

test('a name too long for the file system is a permanent failure; new/ as a file a temporary one', async (t) => {
  const s = await setup(t)
  await s.refused(s.deliver('a'.repeat(300)))
  for (const sub of ['tmp', 'cur']) await fs.mkdir(path.join(s.base, 'f1', sub), { recursive: true })
  await fs.writeFile(path.join(s.base, 'f1', 'new'), 'file')
  await s.refused(s.deliver('f1'), true)
  assert.deepEqual(await fs.readdir(path.join(s.base, 'f1', 'tmp')), [], 'the tmp/ file is removed')
})
