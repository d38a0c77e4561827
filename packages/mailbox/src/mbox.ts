// Appends one message to an mbox (RFC 4155, mboxrd quoting), under a dotlock. An append that
// fails half-way (full disk, crash of the write) is cut back to the size before it.
import fs from 'node:fs/promises'
import { constants } from 'node:fs'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { withDotlock } from './dotlock.js'
import { toLocalLines } from './lines.js'
import { MailboxError } from './errors.js'
import { chownIfRoot, ensureDir, type Owner } from './paths.js'

export async function appendMbox(opts: {
  file: string
  base: string
  owner: Owner
  sender: string
  receivedAt: Date
  /** Header lines to put first (LF or CRLF terminated): Return-Path, Delivered-To. */
  head: string
  message: Readable | AsyncIterable<Buffer>
  lockTimeoutMs?: number
}): Promise<void> {
  await ensureDir(path.dirname(opts.file), opts.base, opts.owner, 0o755)
  await withDotlock(opts.file, opts.lockTimeoutMs ?? 10_000, async () => {
    let fh: fs.FileHandle
    try {
      // O_NOFOLLOW: a symlink planted at the mailbox's name is refused, never followed.
      fh = await fs.open(opts.file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw new MailboxError(`cannot open ${opts.file}: ${(err as Error).message}`, code !== 'ELOOP', { cause: err })
    }
    let before = -1
    try {
      const st = await fh.stat()
      if (!st.isFile()) throw new MailboxError(`${opts.file} is not a regular file`, false)
      if (st.size === 0) await chownIfRoot(opts.file, opts.owner)
      before = st.size
      const from = opts.sender === '' ? 'MAILER-DAEMON' : opts.sender.replace(/\s/g, '_')
      let pending: Buffer[] = [Buffer.from(`From ${from} ${asctime(opts.receivedAt)}\n${opts.head.replace(/\r\n/g, '\n')}`, 'latin1')]
      let pendingBytes = pending[0].length
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
        }
        pending = []
        pendingBytes = 0
      }
      for await (const chunk of toLocalLines(opts.message, true)) {
        pending.push(chunk)
        pendingBytes += chunk.length
        last = chunk[chunk.length - 1]
        if (pendingBytes >= 256 * 1024) await flush()
      }
      // Each message ends with an empty line, so the next `From ` starts a line of its own.
      pending.push(Buffer.from(last === 0x0a ? '\n' : '\n\n'))
      pendingBytes += last === 0x0a ? 1 : 2
      await flush()
      await fh.sync()
    } catch (err) {
      if (before >= 0) {
        await fh.truncate(before).catch(() => undefined)
        await fh.sync().catch(() => undefined)
      }
      await fh.close()
      if (err instanceof MailboxError) throw err
      throw new MailboxError(`write to ${opts.file} failed: ${(err as Error).message}`, true, { cause: err })
    }
    await fh.close()
  })
}

/** `Sat Nov 28 05:49:15 2026`, the date format of the mbox `From ` line (asctime, UTC). */
function asctime(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
  const p2 = (n: number): string => String(n).padStart(2, '0')
  return `${days[d.getUTCDay()]} ${months[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${d.getUTCFullYear()}`
}
