// submission: read config, build the listeners, start them, serve health.
import { loadConfig, loadDotenv, exitOnConfigError } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { startHealthServer } from '@facteur/health'
import { announce, onShutdown } from '@facteur/lifecycle'
import { openReceiving, receivingChecks } from '@facteur/reception'
import { startSubmission } from './submission.js'

const SERVICE = 'submission'
loadDotenv()
const config = exitOnConfigError(SERVICE, () => loadConfig(process.env))
const logger = createLogger({ service: SERVICE, level: config.log.level, format: config.log.format })

try {
  const resources = await openReceiving(config)
  const submission = await startSubmission({ config, logger, ...resources })
  for (const l of submission.listeners) announce(logger, SERVICE, l.name, l.address, l.port)
  const health = await startHealthServer({
    service: SERVICE,
    port: config.submission.healthPort,
    host: config.health.listen,
    checks: receivingChecks(config, resources),
  })
  announce(logger, SERVICE, 'health', config.health.listen, health.port)
  onShutdown(logger, async () => {
    await submission.close()
    await health.close()
  })
} catch (err) {
  logger.error(`cannot start: ${(err as Error).message}`)
  process.exit(1)
}
