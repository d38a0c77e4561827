// A receiving service's start-up (the MX, submission): what it opens, its listeners announced,
// then its health endpoint, and a shutdown that closes both. The services differ only in the
// listeners they build.
import type { Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import { startHealthServer, type HealthCheck } from '@facteur/health'
import { announce, onShutdown } from '@facteur/lifecycle'
import { openReceiving, receivingChecks, type ReceivingResources } from './resources.js'

/** What a receiving service's start gives back: its bound listeners, and how to close them. */
export type ReceivingListeners<Name extends string = string> = {
  listeners: { name: Name; address: string; port: number }[]
  /** The service's own health checks, besides the spool, TLS and filter ones. */
  checks?: Record<string, HealthCheck>
  close(): Promise<void>
}

/** Starts `service`; whatever fails on the way is one line and exit code 1. */
export async function runReceivingService(opts: {
  service: string
  config: Config
  logger: Logger
  healthPort: number
  listen: (resources: ReceivingResources) => Promise<ReceivingListeners>
}): Promise<void> {
  const { service, config, logger } = opts
  try {
    const resources = await openReceiving(config, logger)
    const listening = await opts.listen(resources)
    for (const l of listening.listeners) announce(logger, service, l.name, l.address, l.port)
    const health = await startHealthServer({
      service,
      port: opts.healthPort,
      host: config.health.listen,
      checks: { ...receivingChecks(config, resources), ...listening.checks },
    })
    announce(logger, service, 'health', config.health.listen, health.port)
    onShutdown(logger, async () => {
      await listening.close()
      await health.close()
    })
  } catch (err) {
    logger.error(`cannot start: ${(err as Error).message}`)
    process.exit(1)
  }
}
