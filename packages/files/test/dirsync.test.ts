// syncDir's grouping: a caller never shares an fsync that began before its call.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { syncDir, unlinkIfThere, writeAll } from '@facteur/files'

test('callers while an fsync runs share the next one; callers after it start another', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-files-'))
  try {
    const first = syncDir(dir)
    const second = syncDir(dir) // the first fsync began before this call: it waits for another
    const third = syncDir(dir)
    assert.notEqual(first, second)
    assert.equal(second, third, 'both arrived while the first ran: one fsync covers them')
    await Promise.all([first, second, third])
    const later = syncDir(dir)
    assert.notEqual(later, second)
    await later
    const other = path.join(dir, 'sub')
    await fs.mkdir(other)
    assert.notEqual(syncDir(other), syncDir(dir), 'one group per directory')
    await Promise.all([syncDir(other), syncDir(dir)])
  } finally {
    await fs.rm(dir, { recursive: true, force: true })
  }
})

test('a directory that cannot be opened rejects every caller of its group', async () => {
  const missing = path.join(os.tmpdir(), `facteur-files-missing-${process.pid}`)
  const calls = [syncDir(missing), syncDir(missing), syncDir(missing)]
  for (const c of calls) await assert.rejects(c, { code: 'ENOENT' })
  await assert.rejects(syncDir(missing), { code: 'ENOENT' }, 'the failed group is not kept')
})

test('writeAll writes every byte; unlinkIfThere accepts a file already gone', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-files-'))
  try {
    const file = path.join(dir, 'f')
    const bytes = Buffer.alloc(3 * 1024 * 1024, 0x61)
    const fh = await fs.open(file, 'wx')
    try {
      writeAll(fh.fd, bytes)
    } finally {
      await fh.close()
    }
    assert.equal((await fs.stat(file)).size, bytes.length)
    await unlinkIfThere(file)
    await unlinkIfThere(file)
    await assert.rejects(fs.stat(file), { code: 'ENOENT' })
  } finally {
    await fs.rm(dir, { recursive: true, force: true })
  }
})
