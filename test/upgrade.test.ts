// An upgrade over a queue: a spool written by the two-file layout (an envelope `D/ID.json` beside
// `data/ID`, before one file per message) is converted by the delivery service when it starts, and
// its mail delivered; a held message stays held. Started the way an upgrade starts it: the old
// files appear while delivery runs (its queue scan ignores them), then delivery is killed and the
// supervisor starts it again on that spool.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { openSpool, newQueueId } from '@facteur/spool'
import { startAppliance } from './support/appliance.js'
import { servicePid, waitForRestart } from './support/supervisor.js'
import { readMbox, waitForCount } from './support/mbox.js'
import { envelopeDraft } from './support/queue.js'

const mx = await startAppliance({ users: { 'alice@ours.example': 'pw' } })
after(() => mx.stop())

/** Writes one message in the old layout: its bytes in data/ID, its envelope in `state`/ID.json. */
async function oldLayout(state: 'queue' | 'active' | 'hold', subject: string): Promise<string> {
  const id = newQueueId()
  const body = `From: <a@remote.example>\r\nTo: <alice@ours.example>\r\nSubject: ${subject}\r\n\r\nWritten before the upgrade.\r\n`
  await fs.writeFile(path.join(mx.spoolDir, 'data', id), body)
  const envelope = { version: 1, id, size: body.length, ...envelopeDraft({ to: 'alice@ours.example', sender: 'a@remote.example' }) }
  await fs.writeFile(path.join(mx.spoolDir, state, `${id}.json`), JSON.stringify(envelope))
  return id
}

test('a spool of the two-file layout is converted when delivery starts: queued and active mail delivered, held mail kept', async () => {
  await oldLayout('queue', 'queued-before-upgrade')
  await oldLayout('active', 'active-before-upgrade')
  const held = await oldLayout('hold', 'held-before-upgrade')
  const pid = await servicePid(mx, 'delivery')
  process.kill(pid, 'SIGKILL')
  await waitForRestart(mx, 'delivery', pid)
  const mbox = path.join(mx.mailDir, 'alice')
  const got = await waitForCount(async () => await readMbox(mbox).catch(() => []), 2).catch((err: Error) => {
    throw new Error(`${err.message}\n${mx.output()}`)
  })
  assert.ok(got.some((m) => m.includes('Subject: queued-before-upgrade')))
  assert.ok(got.some((m) => m.includes('Subject: active-before-upgrade')))
  assert.ok(got.every((m) => m.includes('Written before the upgrade.')))
  assert.match(mx.output(), /converted=3/)
  // Nothing of the old layout is left; the held message is one file in hold/, still held.
  for (const d of ['queue', 'active', 'hold', 'data'])
    assert.deepEqual(
      (await fs.readdir(path.join(mx.spoolDir, d))).filter((n) => n.endsWith('.json') || d === 'data'),
      [],
      d,
    )
  const spool = await openSpool(mx.spoolDir)
  const entries = await spool.list()
  assert.deepEqual(
    entries.map((e) => [e.id, e.state]),
    [[held, 'hold']],
  )
  assert.match((await spool.content(held))?.toString('latin1') ?? '', /Subject: held-before-upgrade/)
})
