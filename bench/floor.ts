// The storage floor (not a test): the file calls of our durable path alone, synchronous, in one
// thread, with nothing around them: no SMTP, no JavaScript of ours, no pool. Per message: a spare
// spool file renamed into data/, written, cut to length, fsync'd and renamed into queue/; claimed
// into active/ and read; a Maildir file made in tmp/, written, fsync'd and renamed into new/; the
// spool file renamed into spare/. The directories' fsyncs are shared by BATCH messages, as group
// commit shares them under load. Prints the CPU time a message (user, system): what any server
// keeping our durability contract pays on this machine before its own code.
//   node --import tsx bench/floor.ts   (env: MESSAGES, BATCH, SIZE, DIR)
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'

const root = process.env.DIR ?? path.join(os.tmpdir(), `facteur-floor-${process.pid}`)
const MESSAGES = Number(process.env.MESSAGES ?? 3000)
const BATCH = Number(process.env.BATCH ?? 50)
const SIZE = Number(process.env.SIZE ?? 2048)

const p = (...parts: string[]): string => path.join(root, ...parts)
const message = Buffer.alloc(SIZE, 'x')
const envelope = Buffer.from(`${JSON.stringify({ version: 1, sender: 'a@example.net', recipients: [{ address: 'b@example.com' }] })}\n`)
const spares: string[] = []

function syncDir(dir: string): void {
  const fd = fs.openSync(p(dir), 'r')
  fs.fsyncSync(fd)
  fs.closeSync(fd)
}

/** BATCH messages received, delivered and their spool files kept for reuse. */
function batch(): void {
  const ids = Array.from({ length: BATCH }, () => randomUUID())
  for (const id of ids) {
    const spare = spares.pop()
    if (spare) fs.renameSync(p('spare', spare), p('data', id))
    const fd = fs.openSync(p('data', id), spare ? 'r+' : 'wx')
    fs.writeSync(fd, message)
    fs.writeSync(fd, envelope)
    if (spare) fs.ftruncateSync(fd, message.length + envelope.length)
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    fs.renameSync(p('data', id), p('queue', id))
  }
  syncDir('queue')
  for (const id of ids) fs.renameSync(p('queue', id), p('active', id))
  syncDir('active')
  for (const id of ids) {
    const bytes = fs.readFileSync(p('active', id))
    const name = randomUUID()
    const fd = fs.openSync(p('maildir', 'tmp', name), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600)
    fs.writeSync(fd, bytes, 0, SIZE)
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    fs.renameSync(p('maildir', 'tmp', name), p('maildir', 'new', name))
  }
  syncDir(path.join('maildir', 'new'))
  for (const id of ids) {
    fs.renameSync(p('active', id), p('spare', id))
    spares.push(id)
  }
  syncDir('active')
}

for (const d of ['data', 'queue', 'active', 'spare', 'maildir/tmp', 'maildir/new']) fs.mkdirSync(p(d), { recursive: true })
try {
  for (let i = 0; i < 500 / BATCH; i++) batch() // spool files to reuse, as in a running spool
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < MESSAGES / BATCH; i++) batch()
  const cpu = process.cpuUsage(cpu0)
  const seconds = (performance.now() - t0) / 1000
  const ms = (us: number): string => (us / 1000 / MESSAGES).toFixed(3)
  console.log(
    `${MESSAGES} messages of ${SIZE} B, directory fsyncs shared by ${BATCH}: CPU ${ms(cpu.user + cpu.system)} ms a message ` +
      `(user ${ms(cpu.user)}, system ${ms(cpu.system)}); ${(MESSAGES / seconds).toFixed(0)} messages/s in one thread`,
  )
} finally {
  fs.rmSync(root, { recursive: true, force: true })
}
