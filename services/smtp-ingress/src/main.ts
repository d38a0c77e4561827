// smtp-ingress: read config, build the MX listener, start it.
import { loadConfig, loadDotenv, exitOnConfigError } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { openSpool } from '@facteur/spool'
import { openAccounts } from '@facteur/accounts'
import { openCertificates } from '@facteur/certs'
import { startHealthServer } from '@facteur/health'
import { announce, onShutdown } from '@facteur/lifecycle'
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
  const owner = { uid: config.mailbox.uid, gid: config.mailbox.gid }
  const spool = await openSpool(config.spoolDir, owner)
  const accounts = openAccounts({
    configDir: config.configDir,
    localDomains: config.localDomains,
    postmaster: config.postmaster,
    delimiter: config.recipientDelimiter,
  })
  await accounts.refresh()
  const certs = await openCertificates({
    configDir: config.configDir,
    hostname: config.hostname,
    certFile: config.tls.cert,
    keyFile: config.tls.key,
    owner,
  })
  const ingress = await startIngress({ config, logger, spool, accounts, certs })
  announce(logger, SERVICE, 'smtp', ingress.address, ingress.port)
  const health = await startHealthServer({
    service: SERVICE,
    port: config.health.ingressPort,
    host: config.health.listen,
    checks: {
      spool: async () => (await spool.check(), { status: 'ok' }),
      tls: () => (certs.current().selfSigned ? { status: 'degraded', detail: 'self-signed certificate' } : { status: 'ok' }),
      filter: () =>
        config.filter.url
          ? { status: 'ok', detail: config.filter.url }
          : { status: 'degraded', detail: 'no content filter (FILTER_URL=off): mail is queued unscanned' },
    },
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
