// Delivers one message into a Maildir: written in tmp/, fsync'd, renamed into new/, and new/
// fsync'd (the Maildir specification's protocol, with the fsyncs it leaves implicit); the
// fsync of new/ is shared by deliveries renaming into it at the same time (dirsync.ts).
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Readable } from 'node:stream'
import { toLocalLines } from './lines.js'
import { MailboxError } from './errors.js'
import { chownIfRoot, ensureDir, type Owner } from './paths.js'
import { syncDir } from './dirsync.js'

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
  const root = opts.folder ? path.join(opts.dir, `.${opts.folder}`) : opts.dir
  await Promise.all(['tmp', 'new', 'cur'].map((sub) => ensureDir(path.join(root, sub), opts.base, opts.owner)))
  if (opts.folder) {
    const marker = path.join(root, 'maildirfolder')
    await fs.writeFile(marker, '', { flag: 'a' })
    await chownIfRoot(marker, opts.owner)
  }
  const now = process.hrtime.bigint()
  const sec = Math.floor(Date.now() / 1000)
  const usec = Number((now / 1000n) % 1_000_000n)
  const unique = `${sec}.M${usec}P${process.pid}Q${++seq}R${randomBytes(4).toString('hex')}.${host}`
  const tmp = path.join(root, 'tmp', unique)
  let fh: fs.FileHandle
  try {
    fh = await fs.open(tmp, 'wx', 0o600)
  } catch (err) {
    throw new MailboxError(`cannot create ${tmp}: ${(err as Error).message}`, true, { cause: err })
  }
  let size = 0
  try {
    const head = Buffer.from(opts.head.replace(/\r\n/g, '\n'), 'latin1')
    // writeFile() loops until all is written (write() may stop short on a full disk).
    await fh.writeFile(head)
    size += head.length
    for await (const chunk of toLocalLines(opts.message, false)) {
      await fh.writeFile(chunk)
      size += chunk.length
    }
    await fh.sync()
    await fh.close()
    await chownIfRoot(tmp, opts.owner)
    const name = `${unique},S=${size}`
    await fs.rename(tmp, path.join(root, 'new', name))
    await syncDir(path.join(root, 'new'))
    return name
  } catch (err) {
    await fh.close().catch(() => undefined)
    await fs.rm(tmp, { force: true })
    throw err instanceof MailboxError ? err : new MailboxError(`write to ${root} failed: ${(err as Error).message}`, true, { cause: err })
  }
}
