// File calls split by what they wait for. The quick ones (open, a write into the page cache,
// rename, unlink, close, reading a small file) run on the main thread, where each costs a few
// microseconds: through libuv's thread pool each would also cost a pool thread's wake-up and
// the context switches there and back, more than the call itself on a busy 2-core machine
// (bench/README.md). fsync, which waits for the disk, goes through the pool, so the event loop
// serves other sessions meanwhile.
import fs from 'node:fs'
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

/** unlink(2); already gone is fine. */
export function unlinkIfThere(file: string): void {
  try {
    fs.unlinkSync(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}
