// The dotlock convention (`MAILBOX.lock`, made with O_EXCL) that Dovecot, mutt and procmail
// honour. Our lock also journals the append it guards: it records the mailbox size before the
// append, so when a delivery process is killed mid-append, the next one to take the lock finds
// the dead process's lock and cuts the mailbox back to that size (no partial message survives).
// The size is measured once the lock is ours (measured before, it could miss the end of the
// previous holder's append, which a roll-back would then cut off), and one worker of this
// process at a time handles a given mailbox's lock (two that read the same abandoned lock would
// otherwise both roll it back, the second after the first had taken the lock and appended).
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { syncDir } from '@facteur/files'
import { processAlive } from '@facteur/lifecycle'
import { MailboxError } from './errors.js'

const STALE_MS = 5 * 60 * 1000 // a foreign lock older than this is abandoned (mutt: 5 min)
/** Tells this process's locks from those of an earlier process with the same pid (containers). */
const BOOT = randomBytes(6).toString('hex')
const HOST = os.hostname()

/** `size`: null while the lock is being taken (nothing has been appended under it yet). */
type Journal = { pid: number; boot: string; host: string; size: number | null }

function parseJournal(text: string): Journal | null {
  const m = /^facteur pid=(\d+) boot=([0-9a-f]+) host=(\S+)(?: size=(\d+))?\n/.exec(text)
  return m ? { pid: Number(m[1]), boot: m[2], host: m[3], size: m[4] === undefined ? null : Number(m[4]) } : null
}

const journal = (size?: number): string =>
  `facteur pid=${process.pid} boot=${BOOT} host=${HOST}${size === undefined ? '' : ` size=${size}`}\n`

/** Writes `text` to a new file beside the lock and fsyncs it; returns its name. */
async function aside(lock: string, text: string): Promise<string> {
  const file = `${lock}.${BOOT}.${process.pid}.${randomBytes(4).toString('hex')}`
  const fh = await fs.open(file, 'wx', 0o600)
  try {
    await fh.writeFile(text)
    await fh.sync()
  } finally {
    await fh.close()
  }
  return file
}

/** A lock left by a delivery process of ours that no longer runs (killed, crashed). */
function abandoned(j: Journal): boolean {
  if (j.host !== HOST || j.boot === BOOT) return false
  return j.pid === process.pid || !processAlive(j.pid)
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size
  } catch {
    return 0
  }
}

/** Cuts a mailbox back to the size its abandoned journal recorded. */
async function rollBack(mailbox: string, j: Journal): Promise<void> {
  if (j.size === null || (await sizeOf(mailbox)) <= j.size) return
  const fh = await fs.open(mailbox, 'r+')
  try {
    await fh.truncate(j.size)
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Mailboxes whose lock a worker of this process is taking or holding: the next one waits here. */
const local = new Map<string, Promise<void>>()

export async function withDotlock<T>(mailbox: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  const before = local.get(mailbox) ?? Promise.resolve()
  let release!: () => void
  const tail = before.then(() => new Promise<void>((r) => (release = r)))
  local.set(mailbox, tail)
  await before
  try {
    return await underDotlock(mailbox, deadline, fn)
  } finally {
    release()
    if (local.get(mailbox) === tail) local.delete(mailbox)
  }
}

async function underDotlock<T>(mailbox: string, deadline: number, fn: () => Promise<T>): Promise<T> {
  const lock = `${mailbox}.lock`
  for (;;) {
    try {
      // The lock appears with its journal already in it: written aside, then link(2)ed into place
      // (atomic, and EEXIST while another holds it), so a kill can never leave an empty lock.
      const file = await aside(lock, journal())
      try {
        await fs.link(file, lock)
      } finally {
        await fs.rm(file, { force: true })
      }
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new MailboxError(`cannot create ${lock}: ${(err as Error).message}`, true, { cause: err })
      try {
        const [st, text] = await Promise.all([fs.stat(lock), fs.readFile(lock, 'utf8')])
        const held = parseJournal(text)
        if (held && abandoned(held)) {
          await rollBack(mailbox, held)
          await fs.rm(lock, { force: true })
          continue
        }
        if (!held && Date.now() - st.mtimeMs > STALE_MS) {
          await fs.rm(lock, { force: true })
          continue
        }
      } catch {
        continue // released meanwhile
      }
      if (Date.now() > deadline) throw new MailboxError(`mailbox locked: ${lock} held by another program`, true)
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80))
    }
  }
  const dir = path.dirname(mailbox)
  try {
    // The size before the append, now that nobody else appends: renamed over our lock (a kill
    // before the rename leaves a lock without a size, and nothing appended under it). The
    // directory's fsync keeps the journal's name through a crash of the machine too.
    await fs.rename(await aside(lock, journal(await sizeOf(mailbox))), lock)
    await syncDir(dir)
    return await fn()
  } finally {
    // The removal is fsync'd before the caller reports the append: a lock that came back after
    // a crash of the machine would have its appends cut back.
    await fs.rm(lock, { force: true })
    await syncDir(dir)
  }
}
