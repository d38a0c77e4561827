// Tables that an administrator edits while the services run (users, aliases, access maps) are
// re-read when they change: a stamp of each file, compared before each use, says when.
import fs from 'node:fs'
import fsp from 'node:fs/promises'

/**
 * inode, size and mtime of `file` ('missing' when absent): a change of content, or a new file
 * renamed into place. stat(2) on the main thread: the cached inode of a small file, microseconds,
 * where a trip through libuv's pool for every RCPT would cost more than the call.
 */
export function fileStamp(file: string): string {
  try {
    const st = fs.statSync(file)
    return `${st.ino}:${st.size}:${st.mtimeMs}`
  } catch {
    return 'missing'
  }
}

/** The file's text, or '' when it does not exist (an absent table is an empty one). */
async function readIfThere(file: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return ''
    throw err
  }
}

/**
 * Keeps what is parsed from `files` current: the returned refresh() calls `load(file, text)` for
 * each file whose stamp changed since its last load (text '' for a file that is not there).
 */
export function watchedFiles(files: readonly string[], load: (file: string, text: string) => void): () => Promise<void> {
  const stamps = files.map(() => '')
  /** Re-reads each file whose stamp changed. */
  const look = async (): Promise<void> => {
    for (const [i, file] of files.entries()) {
      const s = fileStamp(file)
      if (s === stamps[i]) continue
      load(file, await readIfThere(file))
      stamps[i] = s
    }
  }
  let looking: Promise<void> | null = null
  let nextLook: Promise<void> | null = null
  return () => {
    // The usual case, nothing changed, is settled here by a stat(2) of each file. The stamps are
    // those of the tables held: equal now, the tables are current.
    if (files.every((file, i) => fileStamp(file) === stamps[i])) return Promise.resolve()
    // Callers at the same time (one per RCPT under load) share a look at the files: a call
    // waits for a look that began after it, so a file renamed into place before the call is
    // always seen; calls arriving while one runs share the next.
    if (nextLook) return nextLook
    if (!looking) return (looking = look().finally(() => (looking = null)))
    return (nextLook = looking
      .catch(() => undefined)
      .then(() => {
        nextLook = null
        return (looking = look().finally(() => (looking = null)))
      }))
  }
}

/**
 * The logical lines of a table in Postfix's source format (access(5), regexp_table(5)): `#`
 * comments and empty lines skipped, a line that starts with white space continuing the one before,
 * a byte-order mark (a table saved by a Windows editor) dropped. Each with its 1-based line number.
 */
export function tableLines(text: string): { line: number; text: string }[] {
  const logical: { line: number; text: string }[] = []
  for (const [i, raw] of text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .entries()) {
    const line = raw.replace(/\r$/, '')
    if (/^\s*(#|$)/.test(line)) continue
    if (/^\s/.test(line) && logical.length) logical[logical.length - 1].text += ' ' + line.trim()
    else logical.push({ line: i + 1, text: line.trim() })
  }
  return logical
}
