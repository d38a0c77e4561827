// The journaled dotlock: a lock left by a killed delivery is rolled back once, never after
// another delivery of ours has taken the lock and appended; a lock killed before it recorded a
// size cuts nothing.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { withDotlock } from '../src/dotlock.js'

/** The pid of a process that has exited: nobody holds a lock under it. */
const deadPid = (): number => spawnSync(process.execPath, ['-e', '']).pid!

async function mailbox(t: { after: (fn: () => Promise<void>) => void }, content: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-dotlock-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  const box = path.join(dir, 'alice')
  await fs.writeFile(box, content)
  return box
}

test('two deliveries of one process find the same abandoned lock: the cut-back happens once, before either appends', async (t) => {
  const box = await mailbox(t, 'whole message\npartial mess')
  await fs.writeFile(`${box}.lock`, `facteur pid=${deadPid()} boot=000000000000 host=${os.hostname()} size=14\n`)
  await Promise.all(
    ['first', 'second'].map((name) =>
      withDotlock(box, 5_000, async () => {
        await fs.appendFile(box, `${name}\n`)
        await new Promise((r) => setTimeout(r, 20))
      }),
    ),
  )
  assert.equal(await fs.readFile(box, 'utf8'), 'whole message\nfirst\nsecond\n')
  await assert.rejects(fs.access(`${box}.lock`))
})

test('a lock abandoned before it recorded a size is removed without cutting the mailbox', async (t) => {
  const box = await mailbox(t, 'whole message\n')
  await fs.writeFile(`${box}.lock`, `facteur pid=${deadPid()} boot=000000000000 host=${os.hostname()}\n`)
  await withDotlock(box, 5_000, () => fs.appendFile(box, 'next\n'))
  assert.equal(await fs.readFile(box, 'utf8'), 'whole message\nnext\n')
})
