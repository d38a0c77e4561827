// delivery: read config, recover the spool, run the queue, serve health.
import { loadConfig, loadDotenv, exitOnConfigError } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { openSpool } from '@facteur/spool'
import { startHealthServer } from '@facteur/health'
import { announce, onShutdown } from '@facteur/lifecycle'
import { openAccounts } from '@facteur/accounts'
import { startRunner } from './runner.js'
import { createNotices } from './bounce.js'
import { createOutbound } from './outbound/index.js'
import { checkMailboxDir } from './mailbox-dir.js'
import { openQuotas } from './quota.js'
import { quotaWarnings } from './quota-warning.js'
import { lmtpTransport } from './lmtp.js'
import { mailboxPathOf } from './local.js'

const SERVICE = 'delivery'
loadDotenv()
const config = exitOnConfigError(SERVICE, () => loadConfig(process.env))
const logger = createLogger({ service: SERVICE, level: config.log.level, format: config.log.format })

try {
  const spool = await openSpool(config.spoolDir, { uid: config.mailbox.uid, gid: config.mailbox.gid })
  const recovered = await spool.recover()
  if (recovered.requeued || recovered.removed || recovered.converted) logger.info('recovered spool', recovered)
  const accounts = openAccounts({
    configDir: config.configDir,
    localDomains: config.localDomains,
    postmaster: config.postmaster,
    delimiter: config.recipientDelimiter,
  })
  const outbound = createOutbound({ config, logger, accounts })
  // LOCAL_TRANSPORT=lmtp: the LMTP server keeps the mailboxes, and their quotas.
  const lmtp = config.localTransport.kind === 'lmtp' ? lmtpTransport(config, config.localTransport) : undefined
  const quotas = lmtp
    ? undefined
    : await openQuotas({
        config,
        accounts,
        logger,
        mailboxOf: (address) => mailboxPathOf(config, address),
        onWarning: quotaWarnings({ config, logger, spool }),
      })
  const runner = startRunner({
    config,
    logger,
    spool,
    remote: outbound.transport,
    isLocal: outbound.isLocal,
    onFlush: () => outbound.forgetDown(),
    quotas,
    lmtp,
    ...createNotices({ config, logger, spool }),
  })
  process.on('SIGUSR1', () => runner.kick())
  const health = await startHealthServer({
    service: SERVICE,
    port: config.health.deliveryPort,
    host: config.health.listen,
    checks: {
      spool: async () => (await spool.check(), { status: 'ok' }),
      ...(lmtp ? { lmtp: lmtp.health } : { mailboxes: () => checkMailboxDir(config.mailbox.base) }),
      queue: async () => ({ status: 'ok', detail: `${await spool.depth()} queued, ${runner.inFlight} in flight` }),
    },
  })
  announce(logger, SERVICE, 'health', config.health.listen, health.port)
  onShutdown(logger, async () => {
    await runner.stop()
    outbound.close()
    quotas?.close()
    lmtp?.close()
    await health.close()
  })
} catch (err) {
  logger.error(`cannot start: ${(err as Error).message}`)
  process.exit(1)
}
