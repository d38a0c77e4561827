// Directories on the way to a mailbox: made as needed, owned by the mail user, never through a
// symlink below the mailbox base (one out of it, or into another user's mailbox).
import fs from 'node:fs/promises'
import { lstatSync, realpathSync } from 'node:fs'
import path from 'node:path'
import { MailboxError } from './errors.js'

export type Owner = { uid?: number; gid?: number }

export async function chownIfRoot(file: string, owner: Owner): Promise<void> {
  if (owner.uid === undefined || process.getuid?.() !== 0) return
  await fs.chown(file, owner.uid, owner.gid ?? owner.uid)
}

/**
 * Makes `dir` (and parents below `base`) and checks that no component below `base` is a symlink:
 * its real path must be `base`'s real path joined with the same names (a link to another user's
 * mailbox, inside `base`, is refused too). Missing components are made one by one after an
 * lstat, so mkdir never follows a planted symlink (a dangling one included) out of `base`.
 */
export async function ensureDir(dir: string, base: string, owner: Owner, mode = 0o700): Promise<void> {
  await ensureDirs([dir], base, owner, mode)
}

/** ensureDir for several directories below one base, whose real path is then looked up once. */
export async function ensureDirs(dirs: string[], base: string, owner: Owner, mode = 0o700): Promise<void> {
  for (const dir of dirs) {
    const rel = path.relative(base, dir)
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw new MailboxError(`${dir} is outside ${base}`, false)
  }
  // Almost always the directories exist: realpath calls settle it, without the mkdir calls
  // (each failing with EEXIST, an exception apiece) that making them takes. Synchronous:
  // realpath(3) of directories in use walks cached dentries (a few us here), where a trip
  // through libuv's pool costs several times that in thread wake-ups, four times per copy.
  if (settled(dirs, base)) return
  const known = realpaths([base, ...dirs])
  if (known) {
    for (const [i, dir] of dirs.entries()) unlinked(dir, path.relative(base, dir), known[0], known[i + 1])
    return
  }
  for (const dir of dirs) await makeChecked(dir, base, owner, mode)
}

/**
 * The usual case in fewer calls: a directory whose parent is known to be reached by its own names
 * (new/ and cur/ after tmp/ of one Maildir) is checked by an lstat, a directory and not a symlink,
 * instead of a realpath(3) that reads every component's link again: 10 system calls a Maildir
 * instead of 18 (bench/README.md). False when something is missing or odd: the full check below
 * then makes what is missing, or refuses with its own message.
 */
function settled(dirs: string[], base: string): boolean {
  const reached = new Set<string>()
  let realBase: string | null = null
  for (const dir of dirs) {
    if (reached.has(path.dirname(dir))) {
      if (!lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) return false
    } else {
      const known = realpaths(realBase === null ? [base, dir] : [dir])
      if (!known) return false
      realBase ??= known[0]
      unlinked(dir, path.relative(base, dir), realBase, known[known.length - 1])
      // Its real path is the base's and its own names: so is each directory on the way to it.
      for (let d = path.dirname(dir); d.length > base.length && d.startsWith(base); d = path.dirname(d)) reached.add(d)
    }
    reached.add(dir)
  }
  return true
}

/** The real paths, or null when one of them cannot be resolved (missing: made by the slow path). */
function realpaths(dirs: string[]): string[] | null {
  try {
    return dirs.map((d) => realpathSync.native(d))
  } catch {
    return null
  }
}

async function makeChecked(dir: string, base: string, owner: Owner, mode: number): Promise<void> {
  const rel = path.relative(base, dir)
  let cur = base
  for (const part of rel.split(path.sep).filter(Boolean)) {
    cur = path.join(cur, part)
    await makeOne(cur, owner, mode)
  }
  const [realBase, realDir] = await Promise.all([fs.realpath(base), fs.realpath(dir)]).catch((err: unknown) => {
    throw new MailboxError(`cannot resolve ${dir}: ${(err as Error).message}`, true, { cause: err })
  })
  unlinked(dir, rel, realBase, realDir)
}

/** One directory below the base: made when missing; a symlink or a file there is refused. */
async function makeOne(cur: string, owner: Owner, mode: number): Promise<void> {
  for (let tries = 0; ; tries++) {
    let st
    try {
      st = await fs.lstat(cur)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOENT' || tries > 0) throw failure(cur, err)
      try {
        await fs.mkdir(cur, { mode })
        await chownIfRoot(cur, owner)
        return
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw failure(cur, e)
        continue // made meanwhile (another delivery) or planted: look again
      }
    }
    if (st.isSymbolicLink()) throw new MailboxError(`${cur} is a symlink`, false)
    if (!st.isDirectory()) throw new MailboxError(`${cur} is not a directory`, true)
    return
  }
}

/** A name too long for the file system never fits; other failures may pass (full disk, EIO). */
function failure(cur: string, err: unknown): MailboxError {
  const code = (err as NodeJS.ErrnoException).code
  return new MailboxError(`cannot create ${cur}: ${(err as Error).message}`, code !== 'ENAMETOOLONG', { cause: err })
}

function unlinked(dir: string, rel: string, realBase: string, realDir: string): void {
  if (realDir !== path.join(realBase, rel))
    throw new MailboxError(`${dir} resolves to ${realDir}, not below ${realBase} by its own names (a symlink?)`, false)
}
