// The dotlock convention (`MAILBOX.lock`, made with O_EXCL) that Dovecot, mutt and procmail honour.
import fs from 'node:fs/promises'
import { MailboxError } from './errors.js'

const STALE_MS = 5 * 60 * 1000 // Dovecot's dotlock_change_timeout default: 2 min; mutt: 5 min

export async function withDotlock<T>(mailbox: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = `${mailbox}.lock`
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const fh = await fs.open(lock, 'wx', 0o600)
      await fh.writeFile(`${process.pid}\n`)
      await fh.close()
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new MailboxError(`cannot create ${lock}: ${(err as Error).message}`, true, { cause: err })
      try {
        const st = await fs.stat(lock)
        if (Date.now() - st.mtimeMs > STALE_MS) {
          await fs.rm(lock, { force: true })
          continue
        }
      } catch {
        continue // released meanwhile
      }
      if (Date.now() > deadline) throw new MailboxError(`mailbox locked: ${lock} held by another program`, true)
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 100))
    }
  }
  try {
    return await fn()
  } finally {
    await fs.rm(lock, { force: true })
  }
}
