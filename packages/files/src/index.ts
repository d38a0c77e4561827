// The file calls the spool and the mailbox writers share, split by what they wait for. The quick
// ones (open, a write into the page cache, rename, close, reading a small file) run on the main
// thread, where each costs a few microseconds: through libuv's thread pool each would also cost a
// pool thread's wake-up and the context switches there and back, more than the call itself on a
// busy 2-core machine (bench/README.md). fsync and unlink, which can wait for the disk, go through
// the pool, so the event loop serves other sessions meanwhile; so does the Maildir writer's
// createFile, which can wait for the file system's inode search.
export { createFile, fsyncFd, writeAll, unlinkIfThere } from './calls.js'
export { syncDir } from './dirsync.js'
export { fileStamp, tableLines, watchedFiles } from './watched.js'
export { parseRegexpLine, substituteGroups, type RegexpLine } from './regexp-table.js'
