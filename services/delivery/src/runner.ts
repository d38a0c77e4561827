// The queue runner: finds due messages, claims each for one of DELIVERY_WORKERS workers, and
// wakes when a new envelope lands in queue/ (fs.watch) or every QUEUE_SCAN_INTERVAL.
import fs from 'node:fs'
import path from 'node:path'
import type { Spool } from '@facteur/spool'
import { attempt, type AttemptDeps } from './attempt.js'

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

  const scan = async (): Promise<void> => {
    if (stopped) return
    if (scanning) {
      again = true
      return
    }
    scanning = true
    try {
      do {
        again = false
        const due = await spool.due()
        if (await spool.takeFlushRequest()) deps.onFlush?.()
        for (const id of due) {
          if (stopped || inFlight.size >= config.queue.workers) break
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
              void scan() // a worker is free: take the next one
            })
          inFlight.set(id, run)
        }
      } while (again && !stopped)
    } catch (err) {
      logger.error('queue scan failed', { err: (err as Error).message })
    } finally {
      scanning = false
    }
  }

  let watcher: fs.FSWatcher | null = null
  try {
    watcher = fs.watch(path.join(spool.dir, 'queue'), () => void scan())
    watcher.on('error', () => undefined)
  } catch {
    // polling alone still works
  }
  const timer = setInterval(() => void scan(), config.queue.scanIntervalMs)
  void scan()

  return {
    kick: () => void scan(),
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
