// The filter's HTTP API (services/filter/README.md): POST /v1/check takes the message as the
// body and the envelope in X-Facteur-Envelope, and answers the verdict as JSON. GET /healthz
// reports each engine. Stateless: any number of callers, any number of filter instances.
import type http from 'node:http'
import type { Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import { startHealthServer, type CheckResult, type HealthServer } from '@facteur/health'
import { ENVELOPE_HEADER } from '@facteur/filter-client'
import { clamavScanner } from './virus.js'
import { spamassassinClient } from './spam/spamassassin.js'
import { rspamdClient } from './spam/rspamd.js'
import { authenticator } from './auth.js'
import { scanMessage, type Engines } from './scan.js'
import { BadRequest, parseEnvelope } from './envelope.js'
import { withTimeout } from './timeout.js'

export type FilterServer = { port: number; address: string; close(): Promise<void>; health: HealthServer }

/** The longest an engine's PING may take in /healthz. */
const HEALTH_PING_MS = 2000

/** Room for our Received: and the filter's own request overhead above the largest message. */
const BODY_SLACK = 1024 * 1024

export async function startFilter(deps: { config: Config; logger: Logger }): Promise<FilterServer> {
  const { config, logger } = deps
  const f = config.filter
  const timeoutMs = f.scanTimeoutMs
  const engines: Engines = {
    virus: f.clamav.enabled ? clamavScanner({ host: f.clamav.host, port: f.clamav.port, timeoutMs }) : null,
    spam:
      f.spam.engine === 'spamassassin'
        ? spamassassinClient({ ...f.spam.spamd, timeoutMs })
        : f.spam.engine === 'rspamd'
          ? rspamdClient({ url: f.spam.rspamdUrl, timeoutMs })
          : null,
    auth: authenticator({ hostname: config.hostname, dnsServers: config.outbound.dnsServers, timeoutMs }),
  }

  // An engine that cannot answer stops mail (503) only when FILTER_FAILURE=tempfail. A hung
  // engine must not hang /healthz too: the supervisor (3 s) and Docker (5 s) would take the
  // filter itself for hung and restart it, which cures nothing. For the same reason the check
  // names the engine as a dependency: the supervisor waits for it instead of restarting us.
  const engineHealth = async (what: string, ping: (() => Promise<void>) | null, off: string): Promise<CheckResult> => {
    if (!ping) return { status: 'degraded', detail: off }
    try {
      await withTimeout(ping(), HEALTH_PING_MS, what)
      return { status: 'ok' }
    } catch (err) {
      return {
        status: f.failure === 'tempfail' ? 'fail' : 'degraded',
        detail: `${what} unreachable: ${(err as Error).message}`,
        dependency: what,
      }
    }
  }

  const check = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const started = Date.now()
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    }
    let envelope
    try {
      envelope = parseEnvelope(req.headers[ENVELOPE_HEADER])
    } catch (err) {
      req.resume()
      if (err instanceof BadRequest) return reply(400, { error: err.message })
      throw err
    }
    const limit = config.smtp.sizeLimit + BODY_SLACK
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > limit) {
        req.resume()
        return reply(413, { error: `message larger than ${limit} bytes` })
      }
      chunks.push(chunk)
    }
    const message = Buffer.concat(chunks)
    const verdict = await scanMessage(message, envelope, engines, f, config.hostname)
    const spam = verdict.checks.spam
    logger.info('verdict', {
      queueId: envelope.queueId,
      remoteIp: envelope.ip,
      ...(envelope.proxied ? { proxied: true } : {}),
      direction: envelope.direction,
      sender: envelope.sender,
      recipients: envelope.recipients.length,
      size,
      action: verdict.action,
      ...(verdict.code
        ? { code: verdict.code, enhanced: `${Math.trunc(verdict.code / 100)}.${verdict.enhanced}`, reason: verdict.text }
        : {}),
      virus: verdict.checks.virus.status === 'infected' ? verdict.checks.virus.signatures.join(',') : verdict.checks.virus.status,
      ...(verdict.checks.banned ? { banned: verdict.checks.banned } : {}),
      spam: spam.status === 'scanned' ? spam.score : spam.status,
      ...(verdict.checks.auth.status === 'checked' ? { spf: verdict.checks.auth.spf, dmarc: verdict.checks.auth.dmarc.result } : {}),
      ...(verdict.checks.virus.status === 'error' ? { virusError: verdict.checks.virus.detail } : {}),
      ...(spam.status === 'error' ? { spamError: spam.detail } : {}),
      durationMs: Date.now() - started,
    })
    reply(200, verdict)
  }

  const health = await startHealthServer({
    service: 'filter',
    port: f.port,
    host: f.listen,
    maxHeaderSize: 1024 * 1024,
    checks: {
      clamav: () =>
        engineHealth(
          'clamd',
          engines.virus ? () => engines.virus!.ping() : null,
          'disabled (CLAMAV_ENABLED=false): mail is not scanned for viruses',
        ),
      spam: () =>
        engineHealth(
          f.spam.engine,
          engines.spam ? () => engines.spam!.ping() : null,
          'off (SPAM_ENGINE=off): mail is not scanned for spam',
        ),
    },
    routes: async (req, res) => {
      const route = req.url?.split('?')[0]
      if (route !== '/v1/check') return false
      if (req.method !== 'POST') {
        res.writeHead(405, { allow: 'POST', 'content-type': 'application/json' }).end(JSON.stringify({ error: 'use POST' }))
        return true
      }
      await check(req, res)
      return true
    },
  })
  return { port: health.port, address: f.listen, close: () => health.close(), health }
}
