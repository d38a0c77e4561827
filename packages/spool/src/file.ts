// File calls split by what they wait for. The quick ones (open, a write into the page cache,
// rename, close, reading a small file) run on the main thread, where each costs a few
// microseconds: through libuv's thread pool each would also cost a pool thread's wake-up and
// the context switches there and back, more than the call itself on a busy 2-core machine
// (bench/README.md). fsync and unlink, which can wait for the disk, go through the pool, so the
// event loop serves other sessions meanwhile.
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import { promisify } from 'node:util'

export const fsyncFd: (fd: number) => Promise<void> = promisify(fs.fsync)

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
