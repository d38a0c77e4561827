// SpamAssassin's spamd over the SPAMC protocol (spamd/PROTOCOL in the SpamAssassin sources):
// one request per TCP connection, `SYMBOLS SPAMC/1.5` with a Content-length header, then the
// message; spamd answers `SPAMD/1.5 0 EX_OK`, a `Spam: True ; 6.1 / 5.0` header and the names
// of the rules that hit. A dozen lines of protocol: no client library for it.
import net from 'node:net'
import type { SpamEngineClient, SpamResult } from './engine.js'

export function spamassassinClient(opts: { host: string; port: number; timeoutMs: number }): SpamEngineClient {
  return {
    name: 'spamassassin',
    async scan(message): Promise<SpamResult> {
      const reply = await exchange(opts, [Buffer.from(`SYMBOLS SPAMC/1.5\r\nContent-length: ${message.length}\r\n\r\n`, 'latin1'), message])
      const { headers, body } = parseReply(reply)
      const spam = /^(True|False|Yes|No)\s*;\s*(-?[\d.]+)\s*\/\s*(-?[\d.]+)/i.exec(headers.get('spam') ?? '')
      if (!spam) throw new Error('spamd: no Spam header in the reply')
      const rules = body
        .trim()
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
      return { score: Number(spam[2]), rules }
    },
    async ping() {
      const reply = await exchange(opts, [Buffer.from('PING SPAMC/1.5\r\n\r\n', 'latin1')])
      if (!/^SPAMD\/[\d.]+ 0 PONG/.test(reply.toString('latin1')))
        throw new Error(`spamd: unexpected answer to PING: ${reply.toString('latin1').slice(0, 80)}`)
    },
  }
}

/** A SYMBOLS reply is a status line, two headers and a list of rule names: a few KiB at most. */
const MAX_REPLY = 256 * 1024

/**
 * Sends the request, half-closes, and collects the whole reply (spamd closes when done). The
 * whole exchange is bounded by timeoutMs, not just each silence: a peer that trickles bytes
 * forever must not hold the scan (and the SMTP client waiting for it) past FILTER_SCAN_TIMEOUT.
 */
function exchange(opts: { host: string; port: number; timeoutMs: number }, request: Buffer[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const socket = net.connect({ host: opts.host, port: opts.port })
    const timer = setTimeout(() => socket.destroy(new Error(`no whole answer within ${opts.timeoutMs} ms`)), opts.timeoutMs)
    socket.on('connect', () => {
      for (const part of request) socket.write(part)
      socket.end()
    })
    socket.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_REPLY) return void socket.destroy(new Error(`a reply of more than ${MAX_REPLY} bytes`))
      chunks.push(c)
    })
    socket.on('error', (err) => reject(new Error(`spamd: ${err.message}`, { cause: err })))
    socket.on('close', (hadError) => {
      clearTimeout(timer)
      if (!hadError) resolve(Buffer.concat(chunks))
    })
  })
}

/** `SPAMD/1.5 0 EX_OK`, header lines, a blank line, the body; a non-zero code is an error. */
function parseReply(reply: Buffer): { headers: Map<string, string>; body: string } {
  const text = reply.toString('latin1')
  const end = text.indexOf('\r\n\r\n')
  const head = end < 0 ? text : text.slice(0, end)
  const [status, ...lines] = head.split('\r\n')
  const m = /^SPAMD\/[\d.]+ (\d+) (.*)$/.exec(status ?? '')
  if (!m) throw new Error(`spamd: unreadable reply: ${status?.slice(0, 80) ?? ''}`)
  if (m[1] !== '0') throw new Error(`spamd: ${m[1]} ${m[2]}`)
  const headers = new Map<string, string>()
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }
  return { headers, body: end < 0 ? '' : text.slice(end + 4) }
}
