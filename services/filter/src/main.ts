// filter: read config, build the content filter's HTTP service, start it.
import { loadConfig, loadDotenv, exitOnConfigError } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { announce, onShutdown } from '@facteur/lifecycle'
import { startFilter } from './server.js'

const SERVICE = 'filter'
loadDotenv()
const config = exitOnConfigError(SERVICE, () => loadConfig(process.env))
const logger = createLogger({ service: SERVICE, level: config.log.level, format: config.log.format })

try {
  const filter = await startFilter({ config, logger })
  // One listener serves the API and /healthz: the supervisor finds both under their names.
  announce(logger, SERVICE, 'http', filter.address, filter.port)
  announce(logger, SERVICE, 'health', filter.address, filter.port)
  onShutdown(logger, () => filter.close())
} catch (err) {
  logger.error(`cannot start: ${(err as Error).message}`)
  process.exit(1)
}
