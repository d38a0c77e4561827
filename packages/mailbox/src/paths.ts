// Directories on the way to a mailbox: made as needed, owned by the mail user, never through a
// symlink that leads outside the mailbox base.
import fs from 'node:fs/promises'
import path from 'node:path'
import { MailboxError } from './errors.js'

export type Owner = { uid?: number; gid?: number }

export async function chownIfRoot(file: string, owner: Owner): Promise<void> {
  if (owner.uid === undefined || process.getuid?.() !== 0) return
  await fs.chown(file, owner.uid, owner.gid ?? owner.uid)
}

/** Makes `dir` (and parents below `base`) and checks that its real path stays below `base`. */
export async function ensureDir(dir: string, base: string, owner: Owner, mode = 0o700): Promise<void> {
  const rel = path.relative(base, dir)
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw new MailboxError(`${dir} is outside ${base}`, false)
  // Almost always the directory exists: two realpath calls settle it, without the mkdir calls
  // (each failing with EEXIST, an exception apiece) that making it takes.
  const known = await Promise.all([fs.realpath(base), fs.realpath(dir)]).catch(() => null)
  if (known) return inside(dir, known[0], known[1])
  let cur = base
  for (const part of rel.split(path.sep).filter(Boolean)) {
    cur = path.join(cur, part)
    try {
      await fs.mkdir(cur, { mode })
      await chownIfRoot(cur, owner)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new MailboxError(`cannot create ${cur}: ${(err as Error).message}`, true, { cause: err })
    }
  }
  const [realBase, realDir] = await Promise.all([fs.realpath(base), fs.realpath(dir)])
  inside(dir, realBase, realDir)
}

function inside(dir: string, realBase: string, realDir: string): void {
  if (realDir !== realBase && !realDir.startsWith(realBase + path.sep))
    throw new MailboxError(`${dir} resolves to ${realDir}, outside ${realBase} (a symlink?)`, false)
}
