// One file call each, on the main thread or through libuv's pool (index.ts says which and why).
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import { promisify } from 'node:util'

/** fsync(2), through the pool. */
export const fsyncFd: (fd: number) => Promise<void> = promisify(fs.fsync)

/**
 * A new file (O_EXCL, mode 0600) made through the pool: where the file system makes creating a
 * file slow (an ext4 without a journal scans for a free inode, bench/README.md), several are then
 * made side by side on both cores, and the event loop serves others meanwhile.
 */
export function createFile(file: string): Promise<number> {
  return new Promise((resolve, reject) => fs.open(file, 'wx', 0o600, (err, fd) => (err ? reject(err) : resolve(fd))))
}

/** write(2) until every byte is written: a short write on a filling disk is followed by a call that fails (ENOSPC). */
export function writeAll(fd: number, bytes: Buffer): void {
  for (let off = 0; off < bytes.length;) {
    const n = fs.writeSync(fd, bytes, off)
    if (n <= 0) throw new Error('write(2) wrote nothing')
    off += n
  }
}

/**
 * unlink(2), through the pool: freeing a file's blocks can wait for the device (a file system
 * mounted with `discard` trims them at once), which must not stall the event loop. Already gone is fine.
 */
export async function unlinkIfThere(file: string): Promise<void> {
  try {
    await fsp.unlink(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}
