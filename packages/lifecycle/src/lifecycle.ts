import type { Logger } from '@facteur/logging'

export type Announcement = { type: 'listening'; service: string; name: string; address: string; port: number }

/** Logs `listening` and tells a supervising parent the port that was bound (port 0 picks one). */
export function announce(logger: Logger, service: string, name: string, address: string, port: number): void {
  logger.info('listening', { listener: name, address, port })
  if (process.send) {
    const msg: Announcement = { type: 'listening', service, name, address, port }
    process.send(msg)
  }
}

/**
 * SIGTERM/SIGINT: stop accepting, finish what is in flight (`stop`), exit 0. A second signal,
 * or `graceMs` passing, exits at once: nothing is lost, since only committed mail was answered 250.
 */
export function onShutdown(logger: Logger, stop: () => Promise<void>, graceMs = 30_000): void {
  let stopping = false
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1)
    stopping = true
    logger.info('stopping', { signal })
    const timer = setTimeout(() => {
      logger.warn('stop took too long, exiting', { graceMs })
      process.exit(1)
    }, graceMs)
    timer.unref()
    stop().then(
      () => {
        logger.info('stopped')
        process.exit(0)
      },
      (err: unknown) => {
        logger.error('stop failed', { err: (err as Error).message })
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', handler)
  process.on('SIGINT', handler)
  // In process mode the supervisor's death must not leave us orphaned.
  process.on('disconnect', () => handler('SIGTERM'))
}

/** Whether process `pid` exists (kill(2) with signal 0; EPERM: it exists, owned by another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
