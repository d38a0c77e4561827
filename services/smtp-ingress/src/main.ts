// smtp-ingress: read config, build the MX listener, start it.
import { loadConfig, loadDotenv, exitOnConfigError } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { announceGateway, bridgeGateway, runReceivingService } from '@facteur/reception'
import { startIngress } from './ingress.js'
import { refuseTrustedGateway } from './docker-gateway.js'

const SERVICE = 'smtp-ingress'
loadDotenv()
const config = exitOnConfigError(SERVICE, () => loadConfig(process.env))
const logger = createLogger({ service: SERVICE, level: config.log.level, format: config.log.format })
const gateway = await bridgeGateway()
exitOnConfigError(SERVICE, () => refuseTrustedGateway(config, gateway))
// PROXY_TRUSTED is the other way to real addresses (README): the ingress takes PROXY headers.
announceGateway(logger, gateway, { proxyTrusted: config.proxy.trusted.join(',') })

await runReceivingService({
  service: SERVICE,
  config,
  logger,
  healthPort: config.health.ingressPort,
  listen: async (resources) => {
    const ingress = await startIngress({ config, logger, gateway, ...resources })
    return {
      listeners: [{ name: 'smtp', address: ingress.address, port: ingress.port }],
      checks: ingress.checks,
      close: () => ingress.close(),
    }
  },
})
