// rspamd's normal worker over HTTP: POST /checkv2 with the envelope in request headers (IP,
// Helo, From, Rcpt, User, Queue-Id), the message as the body; the answer is JSON with the score,
// the symbols that hit and rspamd's own action (no action, add header, soft reject, reject ...).
import http from 'node:http'
import type { SpamEngineClient, SpamResult } from './engine.js'

type CheckV2 = { score?: number; action?: string; symbols?: Record<string, { score?: number }> }

/**
 * For a proxied envelope, the rules that judge the client by its address or its reverse name get
 * no score: it has none we know of, and they would hold every such message as a client without a
 * name (HFILTER_HOSTNAME_UNKNOWN, 2.5). rspamd's Settings header; disabling the symbols instead
 * would turn off its whole hostname filter.
 */
const NAMELESS = JSON.stringify({ scores: { HFILTER_HOSTNAME_UNKNOWN: 0, RDNS_NONE: 0, RDNS_DNSFAIL: 0, HFILTER_HELO_IP_A: 0 } })

export function rspamdClient(opts: { url: string; timeoutMs: number }): SpamEngineClient {
  return {
    name: 'rspamd',
    async scan(message, envelope): Promise<SpamResult> {
      const headers: http.OutgoingHttpHeaders = {
        'content-length': message.length,
        // Behind a proxy that hides it the address is the proxy's: Docker's bridge gateway, which
        // rspamd counts among its local_addrs and would skip SPF, DKIM and DMARC for. Better none,
        // and no score for the rules about the client's address.
        ...(envelope.proxied ? { settings: NAMELESS } : { ip: envelope.ip }),
        helo: envelope.helo,
        from: envelope.sender,
        // One Rcpt header per recipient (rspamd's protocol).
        rcpt: envelope.recipients,
        ...(envelope.user ? { user: envelope.user } : {}),
        ...(envelope.queueId ? { 'queue-id': envelope.queueId } : {}),
      }
      const { status, body } = await request(opts, 'POST', '/checkv2', headers, message)
      if (status !== 200) throw new Error(`rspamd: HTTP ${status}: ${body.slice(0, 120)}`)
      const json = JSON.parse(body) as CheckV2
      if (typeof json.score !== 'number') throw new Error('rspamd: no score in the answer')
      const rules = Object.entries(json.symbols ?? {})
        .filter(([, s]) => (s.score ?? 0) !== 0)
        .map(([name]) => name)
        .sort()
      return { score: json.score, rules, action: json.action }
    },
    async ping() {
      const { status, body } = await request(opts, 'GET', '/ping', {})
      if (status !== 200 || !/pong/i.test(body)) throw new Error(`rspamd: unexpected answer to /ping: HTTP ${status}`)
    },
  }
}

function request(
  opts: { url: string; timeoutMs: number },
  method: string,
  path: string,
  headers: http.OutgoingHttpHeaders,
  body?: Buffer,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, opts.url + '/'), { method, headers, signal: AbortSignal.timeout(opts.timeoutMs) }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
    })
    req.on('error', (err) =>
      reject(new Error(`rspamd: ${err.name === 'AbortError' ? `no answer within ${opts.timeoutMs} ms` : err.message}`, { cause: err })),
    )
    req.end(body)
  })
}
