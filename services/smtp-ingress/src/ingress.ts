// The MX listener (RFC 5321 on SMTP_PORT): accepts mail for our domains (and relays for
// TRUSTED_NETWORKS), refuses everything else in the dialogue, and answers 250 only once the
// message is committed to the spool. The session dispatches; policy/ decides.
import path from 'node:path'
import { SMTPServer } from 'smtp-server'
import type { Config } from '@facteur/config'
import { inNetworks } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import type { Spool } from '@facteur/spool'
import type { Accounts, Srs } from '@facteur/accounts'
import { servesRenewedCertificate, type Certificates } from '@facteur/certs'
import { SmtpError } from '@facteur/smtp-error'
import type { HealthCheck } from '@facteur/health'
import {
  acceptProxyV2,
  alwaysBcc,
  clientLimitFor,
  connectionRateFor,
  guardListener,
  listenerOptions,
  listenShared,
  mailTransactions,
  createAdmission,
  sharedAddress,
  type Transaction,
} from '@facteur/reception'
import { decideRecipient } from './policy/rcpt.js'
import { checkLoops } from './policy/loops.js'
import { alwaysReachable, dnsblLookup, refuseListed, type Listing } from './policy/dnsbl.js'
import { senderDomainCheck } from './policy/sender.js'
import { clientNameCheck } from './policy/client-name.js'
import { policyResolver } from './policy/lookups.js'
import { exemptFrom, Greylist } from './policy/greylist.js'
import { openAccess } from '@facteur/reception'
import { heloRefusal } from './policy/helo.js'
import { setGreetingDelay } from './greeting.js'

export type Ingress = { port: number; address: string; checks: Record<string, HealthCheck>; close(): Promise<void> }

export async function startIngress(deps: {
  config: Config
  logger: Logger
  spool: Spool
  accounts: Accounts
  certs: Certificates
  /** SRS_DOMAIN's SRS, which turns bounces to its addresses back into their senders. */
  srs?: () => Promise<Srs | null>
  /** The Docker bridge gateway, when clients of a published port may all appear from it. */
  gateway?: string | null
}): Promise<Ingress> {
  const { config, logger, spool, accounts, certs } = deps
  const trusted = (ip: string): boolean => inNetworks(config.trustedNetworks, ip)
  // The gateway stands for every client behind Docker's userland proxy, as SHARED_CLIENT_ADDRESSES
  // for theirs: not one client to count, and not an address to judge a sender by (SPF, DNSBL).
  const proxied = sharedAddress(config, deps.gateway ?? null)
  const clients = clientLimitFor(config, proxied)
  const rate = connectionRateFor(config, proxied)
  // SMTP_DNSBL: asked at connect, answered by RCPT; TRUSTED_NETWORKS and the gateway are not asked.
  const resolver = policyResolver(config)
  const dnsbl = dnsblLookup(config, resolver, logger)
  // UNKNOWN_SENDER_DOMAIN: TRUSTED_NETWORKS (our own users) are not asked.
  const senderDomain = senderDomainCheck(config, resolver)
  const listings = new Map<string, Promise<Listing | null>>()
  // SMTP_CLIENT_PTR_CHECK: asked at connect, answered at RCPT; TRUSTED_NETWORKS and the gateway are not asked.
  const clientName = clientNameCheck(config, resolver)
  const names = new Map<string, Promise<SmtpError | null>>()
  // CONFIG_DIR/client_access, sender_access, recipient_access (Postfix's access(5)).
  const access = openAccess({ configDir: config.configDir, delimiter: config.recipientDelimiter, logger })
  // GREYLIST_DELAY: first-time triplets are deferred; TRUSTED_NETWORKS are not.
  const greylist = config.greylistDelayMs
    ? await new Greylist({
        delayMs: config.greylistDelayMs,
        file: path.join(config.spoolDir, 'greylist.json'),
        logger,
        shared: proxied,
        exempt: exemptFrom(config.greylistExempt),
      }).open()
    : null

  const mail = mailTransactions<Transaction>(
    { config, logger, spool, admission: createAdmission(config.smtp.maxTransactions), alwaysBcc: alwaysBcc(config, accounts, logger) },
    {
      // RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted; beyond our limit, 452.
      recipientLimit: (txn) => (txn.rcptCount >= config.smtp.maxRecipients ? new SmtpError(452, '5.3', 'Too many recipients') : null),
      recipients: async (address, session) => {
        const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : ''
        const allowed = access.decide(session.remoteAddress, sender, address.address)
        if (allowed instanceof SmtpError) throw allowed
        // An OK waives the HELO check, the blocklists and greylisting; never the relay rules.
        // SMTP_HELO_CHECK, as Postfix's smtpd_helo_restrictions after permit_mynetworks.
        const badHelo = allowed || trusted(session.remoteAddress) ? null : heloRefusal(config.heloCheck, session.hostNameAppearsAs ?? '')
        if (badHelo) throw badHelo
        const listed = allowed ? null : refuseListed((await listings.get(session.id)) ?? null, session.remoteAddress, address.address)
        if (listed) throw listed
        const unnamed = allowed || alwaysReachable(address.address) ? null : ((await names.get(session.id)) ?? null)
        if (unnamed) throw unnamed
        const accepted = await decideRecipient(address.address, {
          config,
          accounts,
          srs: deps.srs,
          trusted: trusted(session.remoteAddress),
        })
        // After the recipient is known to be ours: an unknown one gets its 550 at once (RFC 6647 §5).
        const greylisted =
          greylist && !allowed && !trusted(session.remoteAddress) ? greylist.check(session.remoteAddress, sender, address.address) : null
        if (greylisted) throw greylisted
        return accepted.map((r) => ({ ...r, status: 'pending' as const, attempts: 0 }))
      },
      message: (session, txn) => {
        const recipients = [...txn.recipients.values()]
        return {
          check: (fields) => checkLoops(fields, [...recipients.map((r) => r.address), ...recipients.map((r) => r.original)]),
          // TRUSTED_NETWORKS clients send our own users' mail: outbound (no SPF/DMARC verdict on it).
          direction: trusted(session.remoteAddress) ? 'outbound' : 'inbound',
          proxied: proxied(session.remoteAddress),
          source: 'smtp-ingress',
          traceFor: recipients.length === 1 ? recipients[0].original : undefined,
        }
      },
    },
  )

  const server = new SMTPServer({
    ...listenerOptions(config, certs),
    banner: 'Facteur',
    disabledCommands: ['AUTH'],
    authOptional: true,
    // A front proxy (HAProxy, Traefik ...) tells the real client address in a PROXY header (v1 here,
    // v2 by acceptProxyV2 below); only PROXY_TRUSTED peers may.
    useProxy: config.proxy.trusted.length ? [...config.proxy.trusted] : false,

    onConnect(session, cb) {
      const tooFast = rate.admit(session.remoteAddress)
      if (tooFast) return cb(mail.refuse(session, 'CONNECT', tooFast))
      const refused = clients.admit(session)
      if (refused) return cb(mail.refuse(session, 'CONNECT', refused))
      const ip = session.remoteAddress
      if (dnsbl && !trusted(ip) && !proxied(ip)) listings.set(session.id, dnsbl.lookup(ip))
      if (clientName && !trusted(ip) && !proxied(ip)) names.set(session.id, clientName(ip))
      logger.debug('connect', { cid: session.id, remoteIp: session.remoteAddress })
      cb()
    },

    onMailFrom(address, session, cb) {
      const begin = (): void => {
        mail.begin(session, { recipients: new Map(), rcptCount: 0, started: Date.now() })
        cb()
      }
      void access.refresh().then(
        () => {
          // A client or sender the access tables decide (OK, or refused at RCPT) is not looked up.
          if (!senderDomain || trusted(session.remoteAddress) || access.decide(session.remoteAddress, address.address, null)) return begin()
          void senderDomain(address.address).then((refused) =>
            refused ? cb(mail.refuse(session, 'MAIL', refused, { sender: address.address })) : begin(),
          )
        },
        (err: Error) =>
          cb(mail.refuse(session, 'MAIL', new SmtpError(451, '3.0', 'Local error in processing, try again later', { cause: err }))),
      )
    },

    onRcptTo: mail.onRcptTo,
    onData: mail.onData,
    onClose(session) {
      clients.release(session)
      listings.delete(session.id)
      names.delete(session.id)
      mail.onClose(session)
    },
  })

  server.on('error', (err) => logger.warn('smtp error', { err: err.message }))
  servesRenewedCertificate(server, certs, logger)
  setGreetingDelay(server, config.smtp.greetingDelayMs)
  if (config.proxy.trusted.length) acceptProxyV2(server)
  guardListener(
    server,
    config.smtp,
    (timeout) => logger.info('timeout', timeout),
    (e) => logger.info('too many errors', e),
  )
  const listening = await listenShared(server, config.smtp.port, config.smtp.listen)
  logger.debug('listening', { sockets: listening.sockets })
  return {
    port: listening.port,
    address: listening.address,
    checks: dnsbl ? { dnsbl: dnsbl.health } : {},
    close: async () => {
      await listening.close()
      await greylist?.close()
    },
  }
}
