// The spool's directories and the moves between them: one file per message (its bytes, then its
// envelope: message-file.ts). Every move is a rename(2) inside one filesystem, so each file is
// either wholly in a directory or not there at all.
import fs from 'node:fs/promises'
import fss, { createReadStream } from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { fsyncFd, syncDir, unlinkIfThere, writeAll } from '@facteur/files'
import { envelopeRecord, lastEnvelope, readEnvelopeFile } from './message-file.js'
import { QUEUE_ID, newQueueId, type Envelope } from './envelope.js'

const DIRS = ['tmp', 'data', 'queue', 'active', 'hold', 'spare'] as const
type Dir = (typeof DIRS)[number]

/** Leftovers older than this cannot belong to a transaction still running. */
const STALE_MS = 60 * 60 * 1000
const FLUSH_MARKER = '.flush'
/** Envelopes after a claimed message's bytes past this size (and 8 times the newest's) are compacted to the newest. */
const COMPACT_AFTER = 64 * 1024
/** spare/ keeps at most this many files of delivered messages, of at most SPARE_SIZE bytes of message each, for begin() to reuse. */
const SPARE_MAX = 256
const SPARE_SIZE = 128 * 1024
/** finish() counts spare/'s files again after this many (other processes take them meanwhile). */
const SPARE_RECOUNT = 64
/** begin() lists spare/ again as soon as it has taken the last listing's files; after a listing that found none, only this long after it. */
const SPARE_RELIST_MS = 1000

export type QueueEntry = { id: string; state: 'queue' | 'active' | 'hold'; envelope: Envelope }

export type MessageWriter = {
  readonly id: string
  /** The data file being written (readable by a content filter before commit; not queued until then). */
  readonly path: string
  /** Appends message bytes to the data file. */
  write(chunk: Buffer): Promise<void>
  /** Bytes written so far. */
  readonly size: number
  /**
   * The bytes are all written: fsyncs them, once. Called before commit(), it runs while something
   * else does (the content filter's scan), and commit()'s own fsync has only the envelope left.
   */
  sync(): Promise<void>
  /**
   * Makes the message durable and visible to delivery; only then may the 250 be sent. `hold`: it
   * goes on hold instead (header_checks' HOLD), durable and kept from delivery until released.
   */
  commit(envelope: Omit<Envelope, 'version' | 'id' | 'size'>, options?: { hold?: boolean }): Promise<Envelope>
  /** Drops the data file (a refused or broken transaction). */
  abort(): Promise<void>
}

export type ActiveMessage = {
  readonly envelope: Envelope
  /** The message as delivered: the envelope's prepended headers, then the stored bytes. */
  open(): Readable
  /** The same bytes in one buffer (one read of the data file, kept for the attempt's later calls). */
  read(): Promise<Buffer>
  /** Records the envelope durably (appended to the file; delivery: once per attempt, with its outcomes); concurrent calls share writes. */
  save(): Promise<void>
  /** Every recipient is final: the message leaves the spool (its removal is fsync'd). */
  finish(): Promise<void>
  /** Some recipients remain: back to the queue for the next attempt. */
  release(nextAttempt: number): Promise<void>
}

export type Spool = {
  readonly dir: string
  begin(now?: number): Promise<MessageWriter>
  /** Queues a whole message in one call (bounces, tests). */
  enqueue(message: Buffer, envelope: Omit<Envelope, 'version' | 'id' | 'size'>): Promise<Envelope>
  /**
   * Ids in queue/ whose next attempt is due, oldest first. `only`: look at these names alone
   * (those the caller saw land in queue/), their envelopes read afresh, instead of listing the directory.
   */
  due(now?: number, only?: string[]): Promise<string[]>
  /**
   * Forgets what due() remembers of these messages' next attempts: their envelopes changed in
   * another process (mailctl's flush or release), so the next listing reads them afresh.
   */
  forget(ids: Iterable<string>): void
  /** Claims a queued message for one worker (rename queue -> active); null if another won. */
  claim(id: string): Promise<ActiveMessage | null>
  /** After a crash: active/ back to queue/, leftovers in tmp/ and data/ removed; a spool of the two-file layout converted. */
  recover(): Promise<{ requeued: number; removed: number; converted: number }>
  list(): Promise<QueueEntry[]>
  /** A queued message's stored bytes (without its envelope or prepended headers); null once it has gone. */
  content(id: string): Promise<Buffer | null>
  hold(id: string): Promise<boolean>
  release(id: string): Promise<boolean>
  remove(id: string): Promise<boolean>
  /** Makes every queued message due now, and asks delivery to retry hosts it marked down. */
  flush(): Promise<number>
  /**
   * True once per flush() since the last call (delivery forgets its down hosts then); call after
   * due(). Everything due() remembered is forgotten then: list again to see the flushed messages.
   */
  takeFlushRequest(): Promise<boolean>
  /** Messages queued or active (the queue depth). */
  depth(): Promise<number>
  /** Throws when the spool cannot take a message (for health checks). */
  check(): Promise<void>
}

export async function openSpool(dir: string, owner: { uid?: number; gid?: number } = {}): Promise<Spool> {
  const root = path.resolve(dir)
  const p = (d: Dir, name = ''): string => path.join(root, d, name)
  for (const d of DIRS) {
    await fs.mkdir(p(d), { recursive: true, mode: 0o700 })
    await chown(p(d))
  }
  const nextAttemptCache = new Map<string, number>()
  /** Envelopes due() read for messages due now, for the claim() that follows (a read less each). */
  const dueEnvelopes = new Map<string, Envelope>()
  /** Whether the last listing of queue/ held the flush marker (true until there is a listing). */
  let flushSeen = true
  /** Names in spare/ from begin()'s last listing (another process may have taken some since). */
  let spares: string[] = []
  /** When begin()'s last listing found spare/ empty. */
  let sparesEmptyAt = -Infinity
  /** finish()'s count of spare/'s files, and the finishes since it was taken. */
  let spareCount = 0
  let sinceSpareCount = Infinity

  async function chown(file: string): Promise<void> {
    if (owner.uid === undefined || process.getuid?.() !== 0) return
    await fs.chown(file, owner.uid, owner.gid ?? owner.uid)
  }

  const readEnvelope = async (d: Dir, id: string): Promise<Envelope> => readEnvelopeFile(p(d, id), id)

  /**
   * Appends the envelope's new state to its message file and fsyncs it. `rewrite`: the file is
   * delivery's claimed copy (active/, no other writer), which is rewritten with the message and
   * this envelope alone once the envelopes after the message pass COMPACT_AFTER bytes.
   */
  async function appendEnvelope(file: string, envelope: Envelope, rewrite = false): Promise<void> {
    // O_APPEND without O_CREAT: a file that has gone (removed meanwhile) is an error, not a new file.
    const fd = fss.openSync(file, fss.constants.O_WRONLY | fss.constants.O_APPEND)
    let compact = false
    try {
      const size = fss.fstatSync(fd).size
      const record = envelopeRecord(envelope, size)
      compact = rewrite && size - envelope.size + record.length > Math.max(COMPACT_AFTER, 8 * record.length)
      if (!compact) {
        writeAll(fd, record)
        await fsyncFd(fd)
      }
    } finally {
      fss.closeSync(fd)
    }
    if (compact) await compactFile(file, envelope)
  }

  /**
   * A message retried for days gathers an envelope per attempt: a copy in tmp/ gets the message's
   * bytes and the newest envelope alone, is fsync'd, and renamed over the file (its directory
   * fsync'd). A crash before the rename leaves the file as it was (recover() removes the copy).
   */
  async function compactFile(file: string, envelope: Envelope): Promise<void> {
    const copy = p('tmp', `${envelope.id}.compact`)
    fss.copyFileSync(file, copy)
    const fd = fss.openSync(copy, fss.constants.O_WRONLY | fss.constants.O_APPEND)
    try {
      fss.ftruncateSync(fd, envelope.size)
      writeAll(fd, envelopeRecord(envelope, envelope.size))
      await fsyncFd(fd)
    } finally {
      fss.closeSync(fd)
    }
    await chown(copy)
    fss.renameSync(copy, file)
    await syncDir(path.dirname(file))
  }

  /**
   * Reuse: a delivered message's file from spare/, renamed to `file` and opened for writing at its
   * start, or null when there is none to take. A file made and deleted per message costs the
   * filesystem an inode and blocks allocated, then freed (and trimmed, on a volume mounted with
   * `discard`); a file reused keeps both. Its old bytes past the new message's end are cut at commit.
   */
  function reuseSpare(file: string): number | null {
    for (let tries = 0; tries < 4; tries++) {
      if (!spares.length) {
        if (Date.now() - sparesEmptyAt < SPARE_RELIST_MS) return null
        spares = listSpares()
        if (!spares.length) {
          sparesEmptyAt = Date.now()
          return null
        }
      }
      try {
        fss.renameSync(p('spare', spares.pop()!), file)
      } catch {
        continue // taken by another writer (submission, a bounce) since the listing
      }
      let fd: number | null = null
      try {
        fd = fss.openSync(file, fss.constants.O_WRONLY)
        // A file with another name too is not ours to overwrite: after a power cut a volume may
        // keep both names of a rename (spare/ and queue/, or active/ and spare/). Its spare name goes.
        if (fss.fstatSync(fd).nlink !== 1) throw new Error('linked elsewhere too')
        // recover() takes a data/ file this old for a leftover: the reused one is new from now.
        const now = new Date()
        fss.futimesSync(fd, now, now)
        return fd
      } catch {
        if (fd !== null) fss.closeSync(fd)
        fss.rmSync(file, { force: true })
        return null
      }
    }
    return null
  }

  /** Whether finish() may keep one more file in spare/ (counted again every SPARE_RECOUNT calls). */
  function roomForSpare(): boolean {
    if (++sinceSpareCount > SPARE_RECOUNT) {
      spareCount = listSpares().length
      sinceSpareCount = 0
    }
    return spareCount < SPARE_MAX
  }

  /** Keeps `file` (a finished message's, in active/) in spare/; false when it cannot be moved there. */
  function keepSpare(file: string, id: string): boolean {
    try {
      fss.renameSync(file, p('spare', id))
      spareCount++
      return true
    } catch {
      return false // gone already, or no room for the name: deleted as before
    }
  }

  /** spare/'s files (none when it cannot be read: reuse is an optimisation, never a failure). */
  function listSpares(): string[] {
    try {
      return fss.readdirSync(p('spare')).filter((name) => QUEUE_ID.test(name))
    } catch {
      return []
    }
  }

  async function begin(now = Date.now()): Promise<MessageWriter> {
    const id = newQueueId(now)
    // The file is made in data/ and renamed into queue/ at commit: until then it counts for
    // nothing (recover() removes a stale one), and only queue/ needs an fsync for its name.
    const file = p('data', id)
    const spare = reuseSpare(file)
    const reused = spare !== null
    const fd = spare ?? fss.openSync(file, 'wx', 0o600)
    let size = 0
    let closed = false
    const close = (): void => {
      if (!closed) {
        closed = true
        fss.closeSync(fd)
      }
    }
    let synced: Promise<void> | null = null
    const sync = (): Promise<void> => (synced ??= fsyncFd(fd))
    return {
      id,
      path: file,
      get size() {
        return size
      },
      async write(chunk) {
        // Never through a closed descriptor: its number may belong to another file by now.
        if (closed) throw new Error(`${file} is already closed`)
        size += chunk.length
        writeAll(fd, chunk)
      },
      sync,
      async commit(partial, options = {}) {
        if (closed) throw new Error(`${file} is already closed`)
        const envelope: Envelope = { version: 1, id, size, ...partial }
        // An fsync of the bytes begun before (sync(), during the content filter's scan) must
        // have succeeded; the one after the envelope's append covers whatever it did not.
        await synced
        const record = envelopeRecord(envelope, size)
        writeAll(fd, record)
        // A reused file may go on with an older message's bytes: they go before the fsync.
        if (reused) fss.ftruncateSync(fd, size + record.length)
        await fsyncFd(fd)
        close()
        await chown(file)
        // The commit point: the whole file, fsync'd, gets its name in queue/, which is fsync'd.
        const into = options.hold ? 'hold' : 'queue'
        fss.renameSync(file, p(into, id))
        await syncDir(p(into))
        if (into === 'queue') nextAttemptCache.set(id, envelope.nextAttempt)
        return envelope
      },
      async abort() {
        close()
        await unlinkIfThere(file)
      },
    }
  }

  function active(envelope: Envelope): ActiveMessage {
    const id = envelope.id
    const file = p('active', id)
    // Group commit of envelope appends: a save() that arrives while one is being written waits
    // for the next write, which serializes the envelope after the call (so it holds the caller's
    // change); callers arriving meanwhile share that write.
    let saving: Promise<void> | null = null
    let nextSave: Promise<void> | null = null
    let content: Promise<Buffer> | null = null
    const save = (): Promise<void> => {
      if (nextSave) return nextSave
      const start = (): Promise<void> => (saving = appendEnvelope(file, envelope, true).finally(() => (saving = null)))
      if (!saving) return start()
      nextSave = saving
        .catch(() => undefined)
        .then(() => {
          nextSave = null
          return start()
        })
      return nextSave
    }
    return {
      envelope,
      open() {
        const prepend = envelope.prepend ? Buffer.from(envelope.prepend) : null
        // The message's bytes only: the envelopes after them are not part of it.
        const data =
          envelope.size > 0 ? createReadStream(file, { start: 0, end: envelope.size - 1, highWaterMark: 256 * 1024 }) : Readable.from([])
        if (!prepend) return data
        return Readable.from(
          (async function* () {
            yield prepend
            for await (const chunk of data) yield chunk as Buffer
          })(),
        )
      },
      read() {
        content ??= (async () => {
          const data = fss.readFileSync(file).subarray(0, envelope.size)
          return envelope.prepend ? Buffer.concat([Buffer.from(envelope.prepend), data]) : data
        })()
        content.catch(() => (content = null)) // a failed read is tried again by the next call
        return content
      },
      save,
      async finish() {
        // One removal from active/, made durable: delivery may skip recording a last outcome and
        // rely on it. A small file is kept in spare/ for the next message (begin()), while there
        // are few there; any other is deleted.
        const kept = envelope.size <= SPARE_SIZE && roomForSpare() && keepSpare(file, id)
        if (!kept) await unlinkIfThere(file)
        await syncDir(p('active'))
        nextAttemptCache.delete(id)
      },
      async release(nextAttempt) {
        envelope.nextAttempt = nextAttempt
        await save()
        fss.renameSync(file, p('queue', id))
        await syncDir(p('queue'))
        nextAttemptCache.set(id, nextAttempt)
      },
    }
  }

  const queueIds = (names: string[]): string[] => names.filter((id) => QUEUE_ID.test(id)).sort()
  const ids = async (d: Dir): Promise<string[]> => queueIds(await fs.readdir(p(d)))

  /** Renames `from/ID` to `to/ID` and fsyncs `durable` (by default `to`: the new name must survive a crash). */
  async function move(id: string, from: Dir, to: Dir, durable: Dir = to): Promise<boolean> {
    try {
      fss.renameSync(p(from, id), p(to, id))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw err
    }
    await syncDir(p(durable))
    return true
  }

  /**
   * Spools written before the one-file layout: an envelope `D/ID.json` beside `data/ID`. Each
   * becomes `D/ID` (the data copied in tmp/, the envelope appended, fsync'd, renamed, D/
   * fsync'd) before the old files go; a crash half-way converts it again at the next start.
   */
  async function convert(): Promise<number> {
    let n = 0
    for (const d of ['queue', 'active', 'hold'] as const)
      for (const name of await fs.readdir(p(d))) {
        const id = name.slice(0, -'.json'.length)
        if (!name.endsWith('.json') || !QUEUE_ID.test(id)) continue
        const envelope = JSON.parse(fss.readFileSync(p(d, name), 'utf8')) as Envelope
        const tmp = p('tmp', `${id}.convert`)
        try {
          fss.copyFileSync(p('data', id), tmp)
        } catch (err) {
          // No data: nothing to deliver (the old layout removed the envelope first); left as it is.
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
          throw err
        }
        envelope.size = fss.statSync(tmp).size
        await appendEnvelope(tmp, envelope)
        fss.renameSync(tmp, p(d, id))
        await syncDir(p(d))
        await unlinkIfThere(p(d, name))
        await unlinkIfThere(p('data', id))
        n++
      }
    return n
  }

  const spool: Spool = {
    dir: root,
    begin,
    async enqueue(message, partial) {
      const w = await begin()
      try {
        await w.write(message)
        return await w.commit(partial)
      } catch (err) {
        await w.abort()
        throw err
      }
    },
    async due(now = Date.now(), only?: string[]) {
      let queued: string[]
      if (only) {
        queued = only.filter((id) => QUEUE_ID.test(id))
        // A landing may carry a new envelope (mailctl's flush or release appends one, then
        // renames the file back into queue/): read it, whatever the cache says.
        for (const id of queued) nextAttemptCache.delete(id)
      } else {
        const names = await fs.readdir(p('queue'))
        flushSeen = names.includes(FLUSH_MARKER)
        queued = queueIds(names)
        const present = new Set(queued)
        for (const id of nextAttemptCache.keys()) if (!present.has(id)) nextAttemptCache.delete(id)
      }
      dueEnvelopes.clear()
      const out: string[] = []
      for (const id of queued) {
        let next = nextAttemptCache.get(id)
        if (next === undefined) {
          let e: Envelope
          try {
            e = await readEnvelope('queue', id)
          } catch {
            continue // claimed or removed meanwhile
          }
          next = e.nextAttempt
          nextAttemptCache.set(id, next)
          if (next <= now) dueEnvelopes.set(id, e)
        }
        if (next <= now) out.push(id)
      }
      return out
    },
    forget(ids) {
      for (const id of ids) nextAttemptCache.delete(id)
    },
    async claim(id) {
      // No fsync of active/: after a crash recover() puts active/ back in queue/ anyway.
      try {
        fss.renameSync(p('queue', id), p('active', id))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
        throw err
      }
      nextAttemptCache.delete(id)
      // The envelope due() just read, unless that listing is gone: only this service moves
      // messages out of queue/ (mailctl's flush and release append nothing but nextAttempt).
      const seen = dueEnvelopes.get(id)
      dueEnvelopes.delete(id)
      return active(seen ?? (await readEnvelope('active', id)))
    },
    async recover() {
      const converted = await convert()
      let requeued = 0
      let removed = 0
      for (const id of await ids('active')) if (await move(id, 'active', 'queue')) requeued++
      // Only what is old: a receiving service may be writing or committing right now.
      const stale = (file: string): boolean => {
        try {
          return fss.statSync(file).mtimeMs < Date.now() - STALE_MS
        } catch {
          return false
        }
      }
      // tmp/: removals and conversions cut short; data/: transactions cut short before commit.
      for (const d of ['tmp', 'data'] as const)
        for (const f of await fs.readdir(p(d))) {
          if (!stale(p(d, f))) continue
          await fs.rm(p(d, f), { force: true })
          removed++
        }
      return { requeued, removed, converted }
    },
    async list() {
      const out: QueueEntry[] = []
      for (const state of ['active', 'queue', 'hold'] as const)
        for (const id of await ids(state)) {
          try {
            out.push({ id, state, envelope: await readEnvelope(state, id) })
          } catch {
            // moved while listing
          }
        }
      return out.sort((a, b) => a.id.localeCompare(b.id))
    },
    async content(id) {
      for (const state of ['queue', 'active', 'hold'] as const) {
        try {
          const bytes = fss.readFileSync(p(state, id))
          const found = lastEnvelope(bytes, 0, id)
          if (found) return bytes.subarray(0, found.envelope.size)
        } catch {
          // not in this directory (or moved meanwhile)
        }
      }
      return null
    },
    hold: (id) => move(id, 'queue', 'hold'),
    async release(id) {
      // Due now, recorded while still in hold/: once in queue/ a worker may claim it at once.
      let e: Envelope
      try {
        e = await readEnvelope('hold', id)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
        throw err
      }
      e.nextAttempt = 0
      await appendEnvelope(p('hold', id), e)
      nextAttemptCache.delete(id)
      return move(id, 'hold', 'queue')
    },
    async remove(id) {
      for (const d of ['queue', 'hold'] as const) {
        // Claim it first, so that no worker can be delivering it while it goes. What must survive
        // a crash is its absence from d/ (a leftover in tmp/ is removed by recover()).
        if (await move(id, d, 'tmp', d)) {
          await unlinkIfThere(p('tmp', id))
          nextAttemptCache.delete(id)
          return true
        }
      }
      return false
    },
    async flush() {
      // A marker in queue/ (ignored as a message: not a queue id) wakes delivery's watcher too.
      // Written first, so that delivery forgets its down hosts before it sees a message come back
      // due; and again last, so that a delivery that took it meanwhile, and then listed queue/
      // with next attempts it remembered from before, lists it once more (without inotify too).
      const mark = (): Promise<void> => fs.writeFile(p('queue', FLUSH_MARKER), String(Date.now()))
      await mark()
      let n = 0
      for (const id of await ids('queue')) {
        const a = await spool.claim(id)
        if (!a) continue
        await a.release(0)
        n++
      }
      await mark()
      return n
    },
    async takeFlushRequest() {
      // Call after due(): its listing of queue/ tells whether there is a marker to take, so a
      // scan without one costs no failing unlink (an exception apiece).
      if (!flushSeen) return false
      flushSeen = false
      try {
        await fs.unlink(p('queue', FLUSH_MARKER))
        nextAttemptCache.clear()
        return true
      } catch {
        return false
      }
    },
    async depth() {
      return (await ids('queue')).length + (await ids('active')).length
    },
    async check() {
      for (const d of DIRS) await fs.access(p(d), fs.constants.W_OK | fs.constants.X_OK)
      // stat(2) of a directory whose mode denies us still works: also prove a file can be made
      // where a message's file is (data/, renamed from there into queue/).
      const probe = p('data', `.probe.${process.pid}`)
      await fs.writeFile(probe, '')
      await fs.rm(probe, { force: true })
    },
  }
  return spool
}
