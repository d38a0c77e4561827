// The queue runner: finds due messages, claims each for one of DELIVERY_WORKERS workers, and
// wakes when a message lands in queue/ (fs.watch) or every QUEUE_SCAN_INTERVAL. A landing names
// its file (inotify), so the runner looks at that file alone; queue/ is listed whole on the
// interval, on a kick, and when a name was missed or workers were all busy. (A listing reads
// every block of the directory, which never shrinks once a burst has grown it.)
import fs from 'node:fs'
import path from 'node:path'
import { QUEUE_ID, type Spool } from '@facteur/spool'
import { attempt, type AttemptDeps } from './attempt.js'

/** More named landings than this before a scan: list queue/ instead. */
const MAX_HINTS = 1000

export type Runner = {
  /** Scans now (mailctl queue flush, tests). */
  kick(): void
  /** Stops claiming; resolves when the attempts in flight are done. */
  stop(): Promise<void>
  readonly inFlight: number
  readonly lastDelivery: number | null
}

export function startRunner(deps: AttemptDeps & { spool: Spool; onFlush?: () => void }): Runner {
  const { config, logger, spool } = deps
  const inFlight = new Map<string, Promise<void>>()
  let stopped = false
  let scanning = false
  let again = false
  let lastDelivery: number | null = null

  /** Queue ids the watcher saw land since the last scan. */
  const landed = new Set<string>()
  /** The next scan lists queue/ whole. */
  let listAll = true

  const scan = async (full = false): Promise<void> => {
    if (full) listAll = true
    if (stopped) return
    if (scanning) {
      again = true
      return
    }
    // Nothing landed and nothing left over: retries coming due are the interval's to find.
    if (!listAll && landed.size === 0) return
    scanning = true
    try {
      do {
        again = false
        let due: string[]
        if (listAll || landed.size > MAX_HINTS) {
          listAll = false
          // A name that landed may carry a new envelope (mailctl's flush or release): read afresh.
          spool.forget(landed)
          landed.clear()
          due = await spool.due()
          if (await spool.takeFlushRequest()) {
            deps.onFlush?.()
            // That listing may have judged flushed messages by next attempts from before: again.
            listAll = true
            again = true
          }
        } else {
          const names = [...landed].filter((id) => !inFlight.has(id))
          landed.clear()
          due = names.length ? await spool.due(Date.now(), names) : []
        }
        for (const id of due) {
          if (stopped) break
          if (inFlight.size >= config.queue.workers) {
            listAll = true // the rest waits for a worker, then a listing
            break
          }
          if (inFlight.has(id)) continue
          const message = await spool.claim(id)
          if (!message) continue
          const run = attempt(message, deps)
            .then((r) => {
              if (r === 'finished') lastDelivery = Date.now()
            })
            .catch((err: unknown) => {
              logger.error('attempt failed', { queueId: id, err: (err as Error).message })
            })
            .finally(() => {
              inFlight.delete(id)
              void scan() // a worker is free: take what waits
            })
          inFlight.set(id, run)
        }
      } while (again && !stopped)
    } catch (err) {
      listAll = true
      logger.error('queue scan failed', { err: (err as Error).message })
    } finally {
      scanning = false
    }
  }

  let watcher: fs.FSWatcher | null = null
  try {
    watcher = fs.watch(path.join(spool.dir, 'queue'), (_event, name) => {
      // A queue id: look at that file. Anything else (the flush marker, an event without a name): list.
      if (typeof name === 'string' && QUEUE_ID.test(name)) landed.add(name)
      else listAll = true
      void scan()
    })
    watcher.on('error', () => undefined)
  } catch {
    // polling alone still works
  }
  const timer = setInterval(() => void scan(true), config.queue.scanIntervalMs)
  void scan(true)

  return {
    kick: () => void scan(true),
    async stop() {
      stopped = true
      clearInterval(timer)
      watcher?.close()
      await Promise.allSettled([...inFlight.values()])
    },
    get inFlight() {
      return inFlight.size
    },
    get lastDelivery() {
      return lastDelivery
    },
  }
}
