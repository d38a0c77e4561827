// Delivers one message into a Maildir: written in tmp/, fsync'd, renamed into new/, and new/
// fsync'd (the Maildir specification's protocol, with the fsyncs it leaves implicit); the
// fsync of new/ is shared by deliveries renaming into it at the same time (@facteur/files).
import fs from 'node:fs/promises'
import fss, { constants } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { randomUUID } from 'node:crypto'
import type { Readable } from 'node:stream'
import { toLocalLines } from './lines.js'
import { MailboxError } from './errors.js'
import { chownIfRoot, ensureDirs, type Owner } from './paths.js'
import { createFile, fsyncFd, syncDir, writeAll } from '@facteur/files'

let seq = 0
const host = os.hostname().replace(/\//g, '\\057').replace(/:/g, '\\072')

export async function deliverMaildir(opts: {
  dir: string
  base: string
  owner: Owner
  /** A Maildir++ folder such as `Junk` (stored as `.Junk`). */
  folder?: string
  head: string
  message: Readable | AsyncIterable<Buffer>
}): Promise<string> {
  // Maildir++: a folder is `.NAME` inside the Maildir, one name (dots separate levels): no `/`,
  // and no leading dot (`.` + `.` would be the Maildir's parent).
  if (opts.folder !== undefined && opts.folder !== '' && !/^[^./\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]*$/.test(opts.folder))
    throw new MailboxError(`folder name not allowed: ${JSON.stringify(opts.folder)}`, false)
  const root = opts.folder ? path.join(opts.dir, `.${opts.folder}`) : opts.dir
  await ensureDirs(
    ['tmp', 'new', 'cur'].map((sub) => path.join(root, sub)),
    opts.base,
    opts.owner,
  )
  if (opts.folder) await folderMarker(path.join(root, 'maildirfolder'), opts.owner)
  const now = process.hrtime.bigint()
  const sec = Math.floor(Date.now() / 1000)
  const usec = Number((now / 1000n) % 1_000_000n)
  const unique = `${sec}.M${usec}P${process.pid}Q${++seq}R${randomUUID().slice(0, 8)}.${host}`
  const tmp = path.join(root, 'tmp', unique)
  // open, write (into the page cache), close and rename run on the main thread, where each costs
  // microseconds, not a trip through libuv's pool; the fsyncs, which wait for the disk, go there.
  let fd: number
  try {
    // Through the pool (createFile): a message's copies to several mailboxes are made side by side.
    fd = await createFile(tmp)
  } catch (err) {
    throw new MailboxError(`cannot create ${tmp}: ${(err as Error).message}`, true, { cause: err })
  }
  let size = 0
  let open = true
  try {
    // The head goes out with the first chunk (a message held in memory is one write in all).
    let head: Buffer | null = Buffer.from(opts.head.replace(/\r\n/g, '\n'), 'latin1')
    const write = (bytes: Buffer): void => {
      writeAll(fd, bytes)
      size += bytes.length
    }
    for await (const chunk of toLocalLines(opts.message, false)) {
      write(head ? Buffer.concat([head, chunk]) : chunk)
      head = null
    }
    if (head) write(head)
    await fsyncFd(fd)
    open = false
    fss.closeSync(fd)
    await chownIfRoot(tmp, opts.owner)
    const name = `${unique},S=${size}`
    fss.renameSync(tmp, path.join(root, 'new', name))
    await syncDir(path.join(root, 'new'))
    return name
  } catch (err) {
    if (open) fss.closeSync(fd)
    await fs.rm(tmp, { force: true })
    throw err instanceof MailboxError ? err : new MailboxError(`write to ${root} failed: ${(err as Error).message}`, true, { cause: err })
  }
}

/** The empty `maildirfolder` file of a Maildir++ folder: O_NOFOLLOW (a symlink planted there is
 * refused, never followed nor chowned), O_NONBLOCK (a FIFO there cannot hang delivery). */
async function folderMarker(marker: string, owner: Owner): Promise<void> {
  let fh: fs.FileHandle
  try {
    fh = await fs.open(marker, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new MailboxError(`cannot open ${marker}: ${(err as Error).message}`, code !== 'ELOOP' && code !== 'ENXIO', { cause: err })
  }
  try {
    const st = await fh.stat()
    if (!st.isFile()) throw new MailboxError(`${marker} is not a regular file`, false)
    if (owner.uid !== undefined && process.getuid?.() === 0 && st.uid !== owner.uid) await fh.chown(owner.uid, owner.gid ?? owner.uid)
  } finally {
    await fh.close()
  }
}
