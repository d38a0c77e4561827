// submission: read config, build the listeners, start them, serve health.
import { loadConfig, loadDotenv, exitOnConfigError } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { announceGateway, bridgeGateway, runReceivingService } from '@facteur/reception'
import { startSubmission } from './submission.js'

const SERVICE = 'submission'
loadDotenv()
const config = exitOnConfigError(SERVICE, () => loadConfig(process.env))
const logger = createLogger({ service: SERVICE, level: config.log.level, format: config.log.format })
const gateway = await bridgeGateway()
announceGateway(logger, gateway)

await runReceivingService({
  service: SERVICE,
  config,
  logger,
  healthPort: config.submission.healthPort,
  listen: (resources) => startSubmission({ config, logger, gateway, ...resources }),
})
