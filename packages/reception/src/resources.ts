// What every receiving service (the MX, submission) opens at start, and the health checks they
// share: the spool it queues into, the user and alias tables, the TLS certificate.
import type { Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import { openSpool, type Spool } from '@facteur/spool'
import { ensureSrsSecret, openAccounts, openSrs, type Accounts, type Srs } from '@facteur/accounts'
import { openCertificates, type Certificates } from '@facteur/certs'
import type { HealthCheck } from '@facteur/health'

export type ReceivingResources = {
  spool: Spool
  accounts: Accounts
  certs: Certificates
  /** SRS with the current secrets (null while CONFIG_DIR/srs.secret has none); absent with SRS_DOMAIN=none. */
  srs?: () => Promise<Srs | null>
}

export async function openReceiving(config: Config, logger: Logger): Promise<ReceivingResources> {
  const owner = { uid: config.mailbox.uid, gid: config.mailbox.gid }
  const spool = await openSpool(config.spoolDir, owner)
  const accounts = openAccounts({
    configDir: config.configDir,
    localDomains: config.localDomains,
    postmaster: config.postmaster,
    delimiter: config.recipientDelimiter,
    spoolDir: config.spoolDir,
    onProblem: (p) => logger.warn('aliases_regexp line ignored', p),
  })
  await accounts.refresh()
  const certs = await openCertificates({
    configDir: config.configDir,
    hostname: config.hostname,
    certFile: config.tls.cert,
    keyFile: config.tls.key,
    owner,
  })
  // The listeners make the SRS secret (delivery's CONFIG_DIR may be read-only); bounces to the
  // addresses it signs come back here.
  let srs: ReceivingResources['srs']
  if (config.srsDomain) {
    await ensureSrsSecret(config.configDir, owner)
    srs = openSrs({ configDir: config.configDir, domain: config.srsDomain })
  }
  return { spool, accounts, certs, srs }
}

/** spool writable; certificate (self-signed: degraded); content filter configured or not. */
export function receivingChecks(config: Config, r: ReceivingResources): Record<string, HealthCheck> {
  return {
    spool: async () => (await r.spool.check(), { status: 'ok' }),
    tls: async () => {
      await r.certs.reload()
      return r.certs.current().selfSigned ? { status: 'degraded', detail: 'self-signed certificate' } : { status: 'ok' }
    },
    filter: () =>
      config.filter.url
        ? { status: 'ok', detail: config.filter.url }
        : { status: 'degraded', detail: 'no content filter (FILTER_URL=off): mail is queued unscanned' },
  }
}
