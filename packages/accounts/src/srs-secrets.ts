// CONFIG_DIR/srs.secret: the SRS secrets, one a line, as postsrsd's /etc/postsrsd.secret (which
// can be copied here). The first line signs new addresses; every line is tried on a bounce's, so
// a new secret put first keeps the old addresses good while they age. Made with a random secret
// by the first listener to start when it is missing; re-read when it changes.
import fs from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { syncDir, watchedFiles } from '@facteur/files'
import { createSrs, type Srs } from './srs.js'

export const SRS_SECRET_FILE = 'srs.secret'

/** The secrets of the file's text: its lines without their ends, empty ones left out (as postsrsd reads it). */
export function parseSrsSecrets(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l !== '')
}

/**
 * Makes CONFIG_DIR/srs.secret with a random secret when it is not there (two services starting
 * at once: link(2) lets one win, and both then use its secret). Throws when it exists without one.
 */
export async function ensureSrsSecret(configDir: string, owner: { uid?: number; gid?: number } = {}): Promise<void> {
  const file = path.join(configDir, SRS_SECRET_FILE)
  const existing = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null
    throw err
  })
  if (existing !== null) {
    if (parseSrsSecrets(existing).length === 0) throw new Error(`${file} holds no secret (one a line, the first signs)`)
    return
  }
  await fs.mkdir(configDir, { recursive: true })
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}`
  const handle = await fs.open(temp, 'wx', 0o600)
  try {
    await handle.writeFile(`${randomBytes(24).toString('base64')}\n`)
    await handle.sync()
    if (owner.uid !== undefined && process.getuid?.() === 0) await handle.chown(owner.uid, owner.gid ?? owner.uid)
  } finally {
    await handle.close()
  }
  try {
    await fs.link(temp, file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  } finally {
    await fs.rm(temp, { force: true })
  }
  await syncDir(configDir)
}

/**
 * SRS for `domain` with the secrets of CONFIG_DIR/srs.secret as they are now (the file's stamp
 * is compared at each call, as the user tables'); null while the file is missing or empty.
 */
export function openSrs(opts: { configDir: string; domain: string }): () => Promise<Srs | null> {
  const file = path.join(opts.configDir, SRS_SECRET_FILE)
  let srs: Srs | null = null
  const refresh = watchedFiles([file], (_file, text) => {
    const secrets = parseSrsSecrets(text)
    srs = secrets.length ? createSrs({ domain: opts.domain, secrets }) : null
  })
  return async () => {
    await refresh()
    return srs
  }
}
