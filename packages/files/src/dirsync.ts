// Directory fsync with group commit, per directory: every caller is covered by an fsync that
// began after its call (a rename into the directory before the call is durable once it
// resolves); callers arriving while one runs share the next. Concurrent commits into the spool's
// queue/, or deliveries into one Maildir's new/, then cost one or two fsyncs instead of one each.
import fs from 'node:fs'
import { fsyncFd } from './calls.js'

type Group = { running: Promise<void> | null; next: Promise<void> | null }
const groups = new Map<string, Group>()

async function fsyncDir(dir: string): Promise<void> {
  // open and close on the main thread (microseconds); the fsync, which waits for the disk, in libuv's pool.
  const fd = fs.openSync(dir, 'r')
  try {
    await fsyncFd(fd)
  } finally {
    fs.closeSync(fd)
  }
}

export function syncDir(dir: string): Promise<void> {
  let g = groups.get(dir)
  if (!g) groups.set(dir, (g = { running: null, next: null }))
  const group = g
  const start = (): Promise<void> =>
    (group.running = fsyncDir(dir).finally(() => {
      group.running = null
      // Idle: forget the directory, so the map holds only directories being written now.
      if (!group.next && groups.get(dir) === group) groups.delete(dir)
    }))
  if (group.next) return group.next
  if (!group.running) return start()
  group.next = group.running
    .catch(() => undefined)
    .then(() => {
      group.next = null
      return start()
    })
  return group.next
}
