// smtp-ingress: read config, build the MX listener, start it.
import { loadConfig, loadDotenv, exitOnConfigError } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { startHealthServer } from '@facteur/health'
import { announce, onShutdown } from '@facteur/lifecycle'
import { openReceiving, receivingChecks } from '@facteur/reception'
import { startIngress } from './ingress.js'
import { bridgeGateway, refuseTrustedGateway } from './docker-gateway.js'

const SERVICE = 'smtp-ingress'
loadDotenv()
const config = exitOnConfigError(SERVICE, () => loadConfig(process.env))
const logger = createLogger({ service: SERVICE, level: config.log.level, format: config.log.format })
const gateway = await bridgeGateway()
exitOnConfigError(SERVICE, () => refuseTrustedGateway(config, gateway))
if (gateway)
  logger.info('on a Docker bridge network: clients of published ports may appear from its gateway', {
    gateway,
    proxyTrusted: config.proxy.trusted.join(','),
  })

try {
  const resources = await openReceiving(config)
  const ingress = await startIngress({ config, logger, ...resources })
  announce(logger, SERVICE, 'smtp', ingress.address, ingress.port)
  const health = await startHealthServer({
    service: SERVICE,
    port: config.health.ingressPort,
    host: config.health.listen,
    checks: receivingChecks(config, resources),
  })
  announce(logger, SERVICE, 'health', config.health.listen, health.port)
  onShutdown(logger, async () => {
    await ingress.close()
    await health.close()
  })
} catch (err) {
  logger.error(`cannot start: ${(err as Error).message}`)
  process.exit(1)
}
