// submission: read config, build the listeners, start them, serve health.
import { loadConfig, loadDotenv, exitOnConfigError } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { openSpool } from '@facteur/spool'
import { openAccounts } from '@facteur/accounts'
import { openCertificates } from '@facteur/certs'
import { startHealthServer } from '@facteur/health'
import { announce, onShutdown } from '@facteur/lifecycle'
import { startSubmission } from './submission.js'

const SERVICE = 'submission'
loadDotenv()
const config = exitOnConfigError(SERVICE, () => loadConfig(process.env))
const logger = createLogger({ service: SERVICE, level: config.log.level, format: config.log.format })

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
  const submission = await startSubmission({ config, logger, spool, accounts, certs })
  for (const l of submission.listeners) announce(logger, SERVICE, l.name, l.address, l.port)
  const health = await startHealthServer({
    service: SERVICE,
    port: config.submission.healthPort,
    host: config.health.listen,
    checks: {
      spool: async () => (await spool.check(), { status: 'ok' }),
      tls: async () => {
        await certs.reload()
        return certs.current().selfSigned ? { status: 'degraded', detail: 'self-signed certificate' } : { status: 'ok' }
      },
      filter: () =>
        config.filter.url
          ? { status: 'ok', detail: config.filter.url }
          : { status: 'degraded', detail: 'no content filter (FILTER_URL=off): mail is queued unscanned' },
    },
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
