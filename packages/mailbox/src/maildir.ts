// Delivers a message into Maildirs: written in tmp/, fsync'd, renamed into new/, and new/
// fsync'd (the Maildir specification's protocol, with the fsyncs it leaves implicit); the
// fsync of new/ is shared by deliveries renaming into it at the same time (@facteur/files).
// A message for several Maildirs is written once and hard-linked into each new/, as Dovecot's
// LMTP does for a message with several recipients (and so, as there, without Delivered-To).
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
/** Maildirs made ready, or whose new/ is fsync'd, at once for a message to several. */
const PARALLEL = 16
const host = os.hostname().replace(/\//g, '\\057').replace(/:/g, '\\072')

type Message = Readable | AsyncIterable<Buffer>
/** A Maildir, and optionally a Maildir++ folder such as `Junk` in it (stored as `.Junk`). */
export type MaildirTarget = { dir: string; folder?: string }

export async function deliverMaildir(
  opts: MaildirTarget & { base: string; owner: Owner; head: string; message: Message },
): Promise<string> {
  return writeInto(await maildirRoot(opts, opts.base, opts.owner), opts.head, opts.message, opts.owner)
}

/** The Maildir protocol into a root maildirRoot() made ready: tmp/, fsync, rename into new/, fsync of new/. */
async function writeInto(root: string, head: string, message: Message, owner: Owner): Promise<string> {
  const file = await writeTmp(root, head, message, owner)
  const name = `${file.unique},S=${file.size}`
  try {
    fss.closeSync(file.fd)
    fss.renameSync(file.tmp, path.join(root, 'new', name))
    await syncDir(path.join(root, 'new'))
    return name
  } catch (err) {
    await fs.rm(file.tmp, { force: true })
    throw written(root, err)
  }
}

/**
 * One message into several Maildirs (a recipient each; two recipients may share one): written
 * and fsync'd once, then hard-linked into each new/, each under a name of its own. Each link is
 * durable once its new/ is fsync'd and the file's inode (its link count) fsync'd again. Where a
 * link cannot be made (another file system, the link limit), that Maildir gets a copy of its own
 * from `copy()`. Returns, per target in order, its file's name or why it has none.
 */
export async function deliverMaildirs(opts: {
  targets: MaildirTarget[]
  base: string
  owner: Owner
  head: string
  message: Message
  /** The message again, for a Maildir that cannot share the file. */
  copy: () => Message
}): Promise<(string | MailboxError)[]> {
  const { base, owner, head } = opts
  const roots = await limited(opts.targets.length, (i) => maildirRoot(opts.targets[i], base, owner).catch(asMailboxError))
  const first = roots.find((r): r is string => typeof r === 'string')
  if (first === undefined) return roots as MailboxError[]
  let file: Written
  try {
    file = await writeTmp(first, head, opts.message, owner)
  } catch (err) {
    const e = asMailboxError(err)
    return roots.map((r) => (typeof r === 'string' ? e : r))
  }
  let inode: Promise<MailboxError | null> | undefined
  try {
    const names = roots.map((root) => {
      if (typeof root !== 'string') return root
      const name = `${uniqueName()},S=${file.size}`
      try {
        fss.linkSync(file.tmp, path.join(root, 'new', name))
        return name
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EXDEV' || code === 'EMLINK' || code === 'EPERM') return null // a copy of its own, below
        return written(root, err)
      }
    })
    // The link count on disk too: a Maildir whose copy is deleted must not free the others' file.
    inode = fsyncFd(file.fd).then(
      () => null,
      (err: unknown) => written(first, err),
    )
    const finish = async (i: number): Promise<string | MailboxError> => {
      const name = names[i]
      const root = roots[i]
      if (name instanceof MailboxError || typeof root !== 'string') return name as MailboxError
      // Its root is checked already: only the copy is to write.
      if (name === null) return writeInto(root, head, opts.copy(), owner).catch(asMailboxError)
      try {
        await syncDir(path.join(root, 'new'))
      } catch (err) {
        return written(root, err)
      }
      return (await inode) ?? name
    }
    return await limited(names.length, finish)
  } finally {
    await inode
    fss.closeSync(file.fd)
    await fs.rm(file.tmp, { force: true })
  }
}

/** fn(0), fn(1) ... fn(count - 1), PARALLEL at a time (each may hold a descriptor open; MAX_RECIPIENTS may be 100,000). */
async function limited<T>(count: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(PARALLEL, count) }, async () => {
      for (let i = next++; i < count; i = next++) results[i] = await fn(i)
    }),
  )
  return results
}

/** The Maildir (or its folder) with tmp/, new/ and cur/ made or checked (paths.ts). */
async function maildirRoot(t: MaildirTarget, base: string, owner: Owner): Promise<string> {
  // Maildir++: a folder is `.NAME` inside the Maildir, one name (dots separate levels): no `/`,
  // and no leading dot (`.` + `.` would be the Maildir's parent).
  if (t.folder !== undefined && t.folder !== '' && !/^[^./\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]*$/.test(t.folder))
    throw new MailboxError(`folder name not allowed: ${JSON.stringify(t.folder)}`, false)
  const root = t.folder ? path.join(t.dir, `.${t.folder}`) : t.dir
  await ensureDirs(
    ['tmp', 'new', 'cur'].map((sub) => path.join(root, sub)),
    base,
    owner,
  )
  if (t.folder) await folderMarker(path.join(root, 'maildirfolder'), owner)
  return root
}

function uniqueName(): string {
  const now = process.hrtime.bigint()
  const sec = Math.floor(Date.now() / 1000)
  const usec = Number((now / 1000n) % 1_000_000n)
  return `${sec}.M${usec}P${process.pid}Q${++seq}R${randomUUID().slice(0, 8)}.${host}`
}

/** A file in tmp/, written whole and fsync'd, still open (its descriptor is the caller's to close). */
type Written = { tmp: string; unique: string; size: number; fd: number }

async function writeTmp(root: string, head: string, message: Message, owner: Owner): Promise<Written> {
  const unique = uniqueName()
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
  try {
    // The head goes out with the first chunk (a message held in memory is one write in all).
    let first: Buffer | null = Buffer.from(head.replace(/\r\n/g, '\n'), 'latin1')
    const write = (bytes: Buffer): void => {
      writeAll(fd, bytes)
      size += bytes.length
    }
    for await (const chunk of toLocalLines(message, false)) {
      write(first ? Buffer.concat([first, chunk]) : chunk)
      first = null
    }
    if (first) write(first)
    await fsyncFd(fd)
    await chownIfRoot(tmp, owner)
    return { tmp, unique, size, fd }
  } catch (err) {
    fss.closeSync(fd)
    await fs.rm(tmp, { force: true })
    throw written(root, err)
  }
}

function written(root: string, err: unknown): MailboxError {
  return err instanceof MailboxError ? err : new MailboxError(`write to ${root} failed: ${(err as Error).message}`, true, { cause: err })
}

function asMailboxError(err: unknown): MailboxError {
  return err instanceof MailboxError ? err : new MailboxError((err as Error).message, true, { cause: err })
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
