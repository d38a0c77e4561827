// Appends messages to an mbox (RFC 4155, mboxrd quoting), under a dotlock. Appends to one
// mailbox that arrive while it is being written wait, and are then written together: one lock,
// one fsync for all of them (group commit), each one answered only once the lock is gone. An
// append that fails half-way (its message unreadable, a full disk) is cut back to the size
// before it; the others of its group stay. A kill at any point leaves whole messages only: the
// lock's journal records the size before the group, and the next holder cuts back to it.
import fs from 'node:fs/promises'
import { constants } from 'node:fs'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { withDotlock } from './dotlock.js'
import { toLocalLines } from './lines.js'
import { MailboxError } from './errors.js'
import { chownIfRoot, ensureDir, type Owner } from './paths.js'

export type MboxAppend = {
  file: string
  base: string
  owner: Owner
  sender: string
  receivedAt: Date
  /** Header lines to put first (LF or CRLF terminated): Return-Path, Delivered-To. */
  head: string
  message: Readable | AsyncIterable<Buffer>
  lockTimeoutMs?: number
}

/** The most appends written under one lock: the ones after wait for the next group. */
const GROUP_MAX = 100

type Waiting = { append: MboxAppend; settle: (err?: unknown) => void }

/** Appends waiting for their mailbox, by file; a mailbox is in the map while a group is being written. */
const waiting = new Map<string, Waiting[]>()

export async function appendMbox(append: MboxAppend): Promise<void> {
  await ensureDir(path.dirname(append.file), append.base, append.owner, 0o755)
  return new Promise<void>((resolve, reject) => {
    let settled = false
    const settle = (err?: unknown): void => {
      if (settled) return
      settled = true
      if (err === undefined) resolve()
      else
        reject(
          err instanceof MailboxError
            ? err
            : new MailboxError(`write to ${append.file} failed: ${(err as Error).message}`, true, { cause: err }),
        )
    }
    const queue = waiting.get(append.file)
    if (queue) return void queue.push({ append, settle })
    waiting.set(append.file, [{ append, settle }])
    void writeGroups(append.file)
  })
}

/** Writes the mailbox's waiting appends, a group at a time, until none is left. */
async function writeGroups(file: string): Promise<void> {
  const queue = waiting.get(file)!
  while (queue.length > 0) {
    const group = queue.splice(0, GROUP_MAX)
    try {
      const written = await withDotlock(file, group[0].append.lockTimeoutMs ?? 10_000, () => writeGroup(file, group))
      // The lock is gone (its removal fsync'd): no later holder can cut these back any more.
      for (const w of written) w.settle()
    } catch (err) {
      for (const w of group) w.settle(err)
    }
  }
  waiting.delete(file)
}

/**
 * Appends the group's messages in order and fsyncs the mailbox once. Returns the appends that
 * are in it; one whose message failed is cut back and answered at once, with its error.
 */
async function writeGroup(file: string, group: Waiting[]): Promise<Waiting[]> {
  let fh: fs.FileHandle
  try {
    // O_NOFOLLOW: a symlink planted at the mailbox's name is refused, never followed.
    fh = await fs.open(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new MailboxError(`cannot open ${file}: ${(err as Error).message}`, code !== 'ELOOP', { cause: err })
  }
  let start = -1
  const written: Waiting[] = []
  try {
    const st = await fh.stat()
    if (!st.isFile()) throw new MailboxError(`${file} is not a regular file`, false)
    if (st.size === 0) await chownIfRoot(file, group[0].append.owner)
    start = st.size
    let size = start
    for (const w of group) {
      try {
        size += await writeMessage(fh, w.append)
        written.push(w)
      } catch (err) {
        // Only this message is cut back (a failure to cut it back fails the whole group).
        await fh.truncate(size)
        w.settle(err)
      }
    }
    await fh.sync()
  } catch (err) {
    if (start >= 0) {
      await fh.truncate(start).catch(() => undefined)
      await fh.sync().catch(() => undefined)
    }
    await fh.close()
    throw err
  }
  await fh.close()
  return written
}

/** Writes one message (its `From ` line, the head, the lines, an empty line); returns its length. */
async function writeMessage(fh: fs.FileHandle, append: MboxAppend): Promise<number> {
  const from = append.sender === '' ? 'MAILER-DAEMON' : append.sender.replace(/\s/g, '_')
  let pending: Buffer[] = [Buffer.from(`From ${from} ${asctime(append.receivedAt)}\n${append.head.replace(/\r\n/g, '\n')}`, 'latin1')]
  let pendingBytes = pending[0].length
  let total = 0
  let last = 0x0a
  const flush = async (): Promise<void> => {
    if (pendingBytes === 0) return
    const buf = Buffer.concat(pending, pendingBytes)
    // write(2) may write fewer bytes than asked on a filling disk without failing: loop, so the
    // next call fails with ENOSPC and the append is cut back instead of ending truncated.
    for (let off = 0; off < buf.length;) {
      const { bytesWritten } = await fh.write(buf, off, buf.length - off)
      if (bytesWritten === 0) throw new Error('write returned 0 bytes')
      off += bytesWritten
      total += bytesWritten
    }
    pending = []
    pendingBytes = 0
  }
  for await (const chunk of toLocalLines(append.message, true)) {
    pending.push(chunk)
    pendingBytes += chunk.length
    last = chunk[chunk.length - 1]
    if (pendingBytes >= 256 * 1024) await flush()
  }
  // Each message ends with an empty line, so the next `From ` starts a line of its own.
  pending.push(Buffer.from(last === 0x0a ? '\n' : '\n\n'))
  pendingBytes += last === 0x0a ? 1 : 2
  await flush()
  return total
}

/** `Sat Nov 28 05:49:15 2026`, the date format of the mbox `From ` line (asctime, UTC). */
function asctime(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
  const p2 = (n: number): string => String(n).padStart(2, '0')
  return `${days[d.getUTCDay()]} ${months[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${d.getUTCFullYear()}`
}
