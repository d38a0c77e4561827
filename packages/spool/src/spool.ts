// The spool's directories and the moves between them. Every move is a rename(2) inside one
// filesystem, so each file is either wholly in a directory or not there at all.
import fs from 'node:fs/promises'
import fss, { createReadStream } from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { DirSyncer } from './fsync.js'
import { fsyncFd, unlinkIfThere, writeAll } from './file.js'
import { QUEUE_ID, newQueueId, type Envelope } from './envelope.js'

const DIRS = ['tmp', 'data', 'queue', 'active', 'hold'] as const
type Dir = (typeof DIRS)[number]

/** Leftovers older than this cannot belong to a transaction still running. */
const STALE_MS = 60 * 60 * 1000
const FLUSH_MARKER = '.flush'

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
   * The bytes are all written: fsyncs the data file and its name (data/), once. commit() does it
   * anyway; called earlier, it runs while something else does (the content filter's scan).
   */
  sync(): Promise<void>
  /** Makes the message durable and visible to delivery; only then may the 250 be sent. */
  commit(envelope: Omit<Envelope, 'version' | 'id' | 'size'>): Promise<Envelope>
  /** Drops the data file (a refused or broken transaction). */
  abort(): Promise<void>
}

export type ActiveMessage = {
  readonly envelope: Envelope
  /** The message as delivered: the envelope's prepended headers, then the stored bytes. */
  open(): Readable
  /** The same bytes in one buffer (one read of the data file, kept for the attempt's later calls). */
  read(): Promise<Buffer>
  /** Rewrites the envelope durably (delivery: once per attempt, with its outcomes); concurrent calls share writes. */
  save(): Promise<void>
  /** Every recipient is final: the message leaves the spool (the envelope's removal is fsync'd). */
  finish(): Promise<void>
  /** Some recipients remain: back to the queue for the next attempt. */
  release(nextAttempt: number): Promise<void>
}

export type Spool = {
  readonly dir: string
  begin(now?: number): Promise<MessageWriter>
  /** Queues a whole message in one call (bounces, tests). */
  enqueue(message: Buffer, envelope: Omit<Envelope, 'version' | 'id' | 'size'>): Promise<Envelope>
  /** Ids in queue/ whose next attempt is due, oldest first. */
  due(now?: number): Promise<string[]>
  /** Claims a queued message for one worker (rename queue -> active); null if another won. */
  claim(id: string): Promise<ActiveMessage | null>
  /** After a crash: active/ back to queue/, leftovers in tmp/ and orphan data removed. */
  recover(): Promise<{ requeued: number; removed: number }>
  list(): Promise<QueueEntry[]>
  hold(id: string): Promise<boolean>
  release(id: string): Promise<boolean>
  remove(id: string): Promise<boolean>
  /** Makes every queued message due now, and asks delivery to retry hosts it marked down. */
  flush(): Promise<number>
  /** True once per flush() since the last call (delivery forgets its down hosts then); call after due(). */
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
  const syncers = Object.fromEntries(DIRS.map((d) => [d, new DirSyncer(p(d))])) as Record<Dir, DirSyncer>
  const nextAttemptCache = new Map<string, number>()
  /** Envelopes due() read for messages due now, for the claim() that follows (a read less each). */
  const dueEnvelopes = new Map<string, Envelope>()
  /** Whether the last listing of queue/ held the flush marker (true until there is a listing). */
  let flushSeen = true

  async function chown(file: string): Promise<void> {
    if (owner.uid === undefined || process.getuid?.() !== 0) return
    await fs.chown(file, owner.uid, owner.gid ?? owner.uid)
  }

  /** Writes the envelope's JSON to a file in tmp/ and fsyncs it; returns its path. */
  async function stageEnvelope(envelope: Envelope): Promise<string> {
    const tmp = p('tmp', `${envelope.id}.json.${process.pid}.${Math.random().toString(36).slice(2)}`)
    const fd = fss.openSync(tmp, 'wx', 0o600)
    try {
      writeAll(fd, Buffer.from(JSON.stringify(envelope)))
      await fsyncFd(fd)
    } catch (err) {
      fss.closeSync(fd)
      unlinkIfThere(tmp)
      throw err
    }
    fss.closeSync(fd)
    await chown(tmp)
    return tmp
  }

  /** Renames a staged envelope to `to` and fsyncs that directory. */
  async function placeEnvelope(tmp: string, id: string, to: Dir): Promise<void> {
    fss.renameSync(tmp, p(to, `${id}.json`))
    await syncers[to].sync()
  }

  /** Writes JSON to tmp, fsyncs it, and renames it to `to` (then fsyncs the target directory). */
  async function writeEnvelope(envelope: Envelope, to: Dir): Promise<void> {
    await placeEnvelope(await stageEnvelope(envelope), envelope.id, to)
  }

  async function readEnvelope(file: string): Promise<Envelope> {
    return JSON.parse(fss.readFileSync(file, 'utf8')) as Envelope
  }

  async function begin(now = Date.now()): Promise<MessageWriter> {
    const id = newQueueId(now)
    // The data file is made where it stays, in data/: no rename at commit. It counts for nothing
    // until its envelope lands in queue/ (recover() removes a stale one left without). The fsync
    // of data/ that makes its name durable starts now (grouped with other transactions'), so it
    // has usually finished by the end of DATA and costs the 250 no wait.
    const file = p('data', id)
    const fd = fss.openSync(file, 'wx', 0o600)
    const named = syncers.data.sync()
    named.catch(() => undefined) // awaited, with its error, by commit()
    let size = 0
    let closed = false
    const close = (): void => {
      if (!closed) {
        closed = true
        fss.closeSync(fd)
      }
    }
    let synced: Promise<void> | null = null
    const sync = (): Promise<void> =>
      (synced ??= (async () => {
        try {
          await fsyncFd(fd)
        } finally {
          close()
        }
        await chown(file)
        await named
      })())
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
      async commit(partial) {
        const envelope: Envelope = { version: 1, id, size, ...partial }
        // The data's fsync and its name's (data/) run beside the envelope's write and fsync in
        // tmp/ (fsyncs in flight together, not one after the other), unless sync() already ran
        // them; the envelope's rename into queue/, the commit point, waits for all of them.
        const data = sync()
        const staged = stageEnvelope(envelope)
        const [d, e] = await Promise.allSettled([data, staged])
        if (d.status === 'rejected' || e.status === 'rejected') {
          if (e.status === 'fulfilled') unlinkIfThere(e.value)
          throw d.status === 'rejected' ? d.reason : (e as PromiseRejectedResult).reason
        }
        await placeEnvelope(e.value, id, 'queue')
        nextAttemptCache.set(id, envelope.nextAttempt)
        return envelope
      },
      async abort() {
        close()
        unlinkIfThere(file)
      },
    }
  }

  function active(envelope: Envelope): ActiveMessage {
    const id = envelope.id
    // Group commit of envelope rewrites: a save() that arrives while one is being written waits
    // for the next write, which serializes the envelope after the call (so it holds the caller's
    // change); callers arriving meanwhile share that write.
    let saving: Promise<void> | null = null
    let nextSave: Promise<void> | null = null
    let content: Promise<Buffer> | null = null
    const save = (): Promise<void> => {
      if (nextSave) return nextSave
      const start = (): Promise<void> => (saving = writeEnvelope(envelope, 'active').finally(() => (saving = null)))
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
        const data = createReadStream(p('data', id), { highWaterMark: 256 * 1024 })
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
          const data = fss.readFileSync(p('data', id))
          return envelope.prepend ? Buffer.concat([Buffer.from(envelope.prepend), data]) : data
        })()
        content.catch(() => (content = null)) // a failed read is tried again by the next call
        return content
      },
      save,
      async finish() {
        // The envelope goes first, durably (delivery may skip recording a last outcome and rely
        // on this): a crash between the two leaves orphan data, which recover() removes.
        unlinkIfThere(p('active', `${id}.json`))
        await syncers.active.sync()
        unlinkIfThere(p('data', id))
        nextAttemptCache.delete(id)
      },
      async release(nextAttempt) {
        envelope.nextAttempt = nextAttempt
        await writeEnvelope(envelope, 'active')
        fss.renameSync(p('active', `${id}.json`), p('queue', `${id}.json`))
        await syncers.queue.sync()
        nextAttemptCache.set(id, nextAttempt)
      },
    }
  }

  const queueIds = (names: string[]): string[] =>
    names
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5))
      .filter((id) => QUEUE_ID.test(id))
      .sort()
  const ids = async (d: Dir): Promise<string[]> => queueIds(await fs.readdir(p(d)))

  async function move(id: string, from: Dir, to: Dir): Promise<boolean> {
    try {
      fss.renameSync(p(from, `${id}.json`), p(to, `${id}.json`))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw err
    }
    await syncers[to].sync()
    return true
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
    async due(now = Date.now()) {
      const names = await fs.readdir(p('queue'))
      flushSeen = names.includes(FLUSH_MARKER)
      const queued = queueIds(names)
      const present = new Set(queued)
      for (const id of nextAttemptCache.keys()) if (!present.has(id)) nextAttemptCache.delete(id)
      dueEnvelopes.clear()
      const out: string[] = []
      for (const id of queued) {
        let next = nextAttemptCache.get(id)
        if (next === undefined) {
          let e: Envelope
          try {
            e = await readEnvelope(p('queue', `${id}.json`))
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
    async claim(id) {
      try {
        fss.renameSync(p('queue', `${id}.json`), p('active', `${id}.json`))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
        throw err
      }
      nextAttemptCache.delete(id)
      // The envelope due() just read, unless that listing is gone: only this service moves
      // envelopes out of queue/ (mailctl's flush and release rewrite nothing but nextAttempt).
      const seen = dueEnvelopes.get(id)
      dueEnvelopes.delete(id)
      return active(seen ?? (await readEnvelope(p('active', `${id}.json`))))
    },
    async recover() {
      let requeued = 0
      let removed = 0
      for (const id of await ids('active')) if (await move(id, 'active', 'queue')) requeued++
      // Only what is old: a receiving service may be writing or committing right now.
      const stale = async (file: string): Promise<boolean> => {
        try {
          return (await fs.stat(file)).mtimeMs < Date.now() - STALE_MS
        } catch {
          return false
        }
      }
      for (const f of await fs.readdir(p('tmp'))) {
        if (!(await stale(p('tmp', f)))) continue
        await fs.rm(p('tmp', f), { force: true })
        removed++
      }
      const known = new Set([...(await ids('queue')), ...(await ids('active')), ...(await ids('hold'))])
      for (const f of await fs.readdir(p('data'))) {
        // A data file without an envelope is a commit cut short (or a finish cut short).
        if (known.has(f) || !(await stale(p('data', f)))) continue
        await fs.rm(p('data', f), { force: true })
        removed++
      }
      return { requeued, removed }
    },
    async list() {
      const out: QueueEntry[] = []
      for (const state of ['active', 'queue', 'hold'] as const)
        for (const id of await ids(state)) {
          try {
            out.push({ id, state, envelope: await readEnvelope(p(state, `${id}.json`)) })
          } catch {
            // moved while listing
          }
        }
      return out.sort((a, b) => a.id.localeCompare(b.id))
    },
    hold: (id) => move(id, 'queue', 'hold'),
    async release(id) {
      // Due now, written while still in hold/: once in queue/ a worker may claim it at once.
      let e: Envelope
      try {
        e = await readEnvelope(p('hold', `${id}.json`))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
        throw err
      }
      e.nextAttempt = 0
      await writeEnvelope(e, 'hold')
      nextAttemptCache.delete(id)
      return move(id, 'hold', 'queue')
    },
    async remove(id) {
      for (const d of ['queue', 'hold'] as const) {
        // Claim it first, so that no worker can be delivering it while it goes.
        if (await move(id, d, 'tmp')) {
          await fs.rm(p('tmp', `${id}.json`), { force: true })
          await fs.rm(p('data', id), { force: true })
          nextAttemptCache.delete(id)
          return true
        }
      }
      return false
    },
    async flush() {
      // A marker in queue/ (ignored as a message: not a queue id) wakes delivery's watcher too.
      await fs.writeFile(p('queue', FLUSH_MARKER), String(Date.now()))
      let n = 0
      for (const id of await ids('queue')) {
        const a = await spool.claim(id)
        if (!a) continue
        await a.release(0)
        n++
      }
      return n
    },
    async takeFlushRequest() {
      // Call after due(): its listing of queue/ tells whether there is a marker to take, so a
      // scan without one costs no failing unlink (an exception apiece).
      if (!flushSeen) return false
      flushSeen = false
      try {
        await fs.unlink(p('queue', FLUSH_MARKER))
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
      // stat(2) of a directory whose mode denies us still works: also prove a file can be made.
      const probe = p('tmp', `.probe.${process.pid}`)
      await fs.writeFile(probe, '')
      await fs.rm(probe, { force: true })
    },
  }
  return spool
}
