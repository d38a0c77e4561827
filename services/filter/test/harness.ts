// The filter under test: a real listener on port 0 with settings from a test environment, and
// the HTTP calls a caller makes. The engines are real daemons started by each test file.
import http from 'node:http'
import { PassThrough } from 'node:stream'
import { loadConfig } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { encodeEnvelope, type FilterEnvelope, type Verdict } from '@facteur/filter-client'
import { startFilter } from '@facteur/filter'

export type TestFilter = { port: number; logs(): string; close(): Promise<void> }

export async function startTestFilter(env: Record<string, string>): Promise<TestFilter> {
  const config = loadConfig({
    MAIL_DOMAIN: 'ours.example',
    MAIL_HOSTNAME: 'mx.ours.example',
    FILTER_PORT: '0',
    FILTER_SCAN_TIMEOUT: '10s',
    ...env,
  })
  let logs = ''
  const stream = new PassThrough()
  stream.on('data', (c: Buffer) => (logs += c.toString()))
  const logger = createLogger({ service: 'filter', format: 'json', stream })
  const filter = await startFilter({ config, logger })
  return { port: filter.port, logs: () => logs, close: () => filter.close() }
}

export const INBOUND: FilterEnvelope = {
  direction: 'inbound',
  ip: '192.0.2.10',
  helo: 'mail.remote.example',
  sender: 'alice@remote.example',
  recipients: ['bob@ours.example'],
}

/** POST /v1/check as a caller does; resolves with the HTTP status and the parsed verdict. */
export async function check(
  port: number,
  message: string | Buffer,
  envelope: Partial<FilterEnvelope> = {},
): Promise<{ status: number; verdict: Verdict }> {
  const res = await request(
    port,
    'POST',
    '/v1/check',
    { 'x-facteur-envelope': encodeEnvelope({ ...INBOUND, ...envelope }), 'content-type': 'message/rfc822' },
    message,
  )
  return { status: res.status, verdict: JSON.parse(res.body) as Verdict }
}

export async function health(
  port: number,
): Promise<{ status: number; body: { status: string; checks: Record<string, { status: string; detail?: string }> } }> {
  const res = await request(port, 'GET', '/healthz', {})
  return { status: res.status, body: JSON.parse(res.body) as never }
}

export function request(
  port: number,
  method: string,
  path: string,
  headers: http.OutgoingHttpHeaders,
  body?: string | Buffer,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, timeout: 30_000 }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => (text += c.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('timeout', () => req.destroy(new Error('no answer from the filter')))
    req.on('error', reject)
    req.end(body)
  })
}

/** A well-formed message (RFC 5322 §3.6: Date, From, Message-ID), CRLF line ends. */
export function message(opts: { from?: string; to?: string; subject?: string; body?: string; headers?: string[] } = {}): string {
  const from = opts.from ?? 'Alice <alice@remote.example>'
  return [
    ...(opts.headers ?? []),
    `From: ${from}`,
    `To: ${opts.to ?? 'Bob <bob@ours.example>'}`,
    `Subject: ${opts.subject ?? 'Lunch tomorrow'}`,
    'Date: Sat, 28 Nov 2026 05:49:15 +0000',
    `Message-ID: <${Math.random().toString(36).slice(2)}.${Date.now()}@remote.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    ...(opts.body ?? 'Hello Bob,\r\n\r\nShall we have lunch tomorrow at noon, at the usual place?\r\n\r\nAlice').split(/\r?\n/),
    '',
  ].join('\r\n')
}

/** A multipart message with `file` as a base64 attachment (how a virus arrives). */
export function withAttachment(file: string, name = 'invoice.com'): string {
  const b64 = Buffer.from(file, 'latin1').toString('base64')
  return [
    'From: Alice <alice@remote.example>',
    'To: Bob <bob@ours.example>',
    'Subject: Your invoice',
    'Date: Sat, 28 Nov 2026 05:49:15 +0000',
    `Message-ID: <${Date.now()}.att@remote.example>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'Please find the invoice attached.',
    '--b1',
    `Content-Type: application/octet-stream; name="${name}"`,
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${name}"`,
    '',
    b64,
    '--b1--',
    '',
  ].join('\r\n')
}
