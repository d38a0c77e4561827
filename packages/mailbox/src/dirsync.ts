// Directory fsync with group commit, per directory: every caller is covered by an fsync that
// began after its call (its rename is durable once it resolves); callers arriving while one
// runs share the next. Concurrent deliveries into one Maildir's new/ then cost one or two
// fsyncs instead of one each. (The spool has its own for its five directories: a mailbox
// writer does not depend on the queue.)
import fs from 'node:fs'
import { promisify } from 'node:util'

const fsync = promisify(fs.fsync)

type Group = { running: Promise<void> | null; next: Promise<void> | null }
const groups = new Map<string, Group>()

async function fsyncDir(dir: string): Promise<void> {
  // open and close on the main thread (microseconds); the fsync, which waits for the disk, in libuv's pool.
  const fd = fs.openSync(dir, 'r')
  try {
    await fsync(fd)
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
