// The dotlock convention (`MAILBOX.lock`, made with O_EXCL) that Dovecot, mutt and procmail
// honour. Our lock also journals the append it guards: it records the mailbox size before the
// append, so when a delivery process is killed mid-append, the next one to take the lock finds
// the dead process's lock and cuts the mailbox back to that size (no partial message survives).
import fs from 'node:fs/promises'
import os from 'node:os'
import { randomBytes } from 'node:crypto'
import { MailboxError } from './errors.js'

const STALE_MS = 5 * 60 * 1000 // a foreign lock older than this is abandoned (mutt: 5 min)
/** Tells this process's locks from those of an earlier process with the same pid (containers). */
const BOOT = randomBytes(6).toString('hex')
const HOST = os.hostname()

type Journal = { pid: number; boot: string; host: string; size: number }

function parseJournal(text: string): Journal | null {
  const m = /^facteur pid=(\d+) boot=([0-9a-f]+) host=(\S+) size=(\d+)/.exec(text)
  return m ? { pid: Number(m[1]), boot: m[2], host: m[3], size: Number(m[4]) } : null
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** A lock left by a delivery process of ours that no longer runs (killed, crashed). */
function abandoned(j: Journal): boolean {
  if (j.host !== HOST || j.boot === BOOT) return false
  return j.pid === process.pid || !alive(j.pid)
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
  if ((await sizeOf(mailbox)) <= j.size) return
  const fh = await fs.open(mailbox, 'r+')
  try {
    await fh.truncate(j.size)
    await fh.sync()
  } finally {
    await fh.close()
  }
}

export async function withDotlock<T>(mailbox: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = `${mailbox}.lock`
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      // The lock appears with its journal already in it: written aside, then link(2)ed into place
      // (atomic, and EEXIST while another holds it), so a kill can never leave an empty lock.
      const aside = `${lock}.${BOOT}.${process.pid}.${randomBytes(4).toString('hex')}`
      const fh = await fs.open(aside, 'wx', 0o600)
      try {
        await fh.writeFile(`facteur pid=${process.pid} boot=${BOOT} host=${HOST} size=${await sizeOf(mailbox)}\n`)
        await fh.sync()
      } finally {
        await fh.close()
      }
      try {
        await fs.link(aside, lock)
      } finally {
        await fs.rm(aside, { force: true })
      }
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new MailboxError(`cannot create ${lock}: ${(err as Error).message}`, true, { cause: err })
      try {
        const [st, text] = await Promise.all([fs.stat(lock), fs.readFile(lock, 'utf8')])
        const journal = parseJournal(text)
        if (journal && abandoned(journal)) {
          await rollBack(mailbox, journal)
          await fs.rm(lock, { force: true })
          continue
        }
        if (!journal && Date.now() - st.mtimeMs > STALE_MS) {
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
  try {
    return await fn()
  } finally {
    await fs.rm(lock, { force: true })
  }
}
