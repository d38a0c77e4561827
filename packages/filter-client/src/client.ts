// One call to the filter: POST the message to FILTER_URL/v1/check, the envelope in a header,
// and read the verdict; any failure (refused, slow, broken answer) is a FilterUnavailable.
import http from 'node:http'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { ENVELOPE_HEADER, type FilterEnvelope, type Verdict } from './verdict.js'

export class FilterUnavailable extends Error {
  override name = 'FilterUnavailable'
}

/** JSON with every non-ASCII character escaped, so it fits an HTTP header (RFC 9110 §5.5). */
export function encodeEnvelope(envelope: FilterEnvelope): string {
  return JSON.stringify(envelope).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
}

export async function checkMessage(
  filter: { url: string; timeoutMs: number },
  envelope: FilterEnvelope,
  /** The message: chunks, or streams read one after the other (our Received:, then the stored file). */
  parts: readonly (Buffer | Readable)[],
  size?: number,
): Promise<Verdict> {
  const url = new URL('/v1/check', filter.url + '/')
  const signal = AbortSignal.timeout(filter.timeoutMs)
  try {
    return await new Promise<Verdict>((resolve, reject) => {
      const req = http.request(
        url,
        {
          method: 'POST',
          signal,
          headers: {
            'content-type': 'message/rfc822',
            [ENVELOPE_HEADER]: encodeEnvelope(envelope),
            ...(size !== undefined ? { 'content-length': String(size) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('error', reject)
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8')
            if (res.statusCode !== 200)
              return reject(new FilterUnavailable(`filter answered HTTP ${res.statusCode}: ${body.slice(0, 200)}`))
            try {
              const verdict = JSON.parse(body) as Verdict
              if (!['accept', 'tag', 'junk', 'reject', 'tempfail'].includes(verdict.action))
                throw new Error(`unknown action ${String(verdict.action)}`)
              resolve(verdict)
            } catch (err) {
              reject(new FilterUnavailable(`filter answered an unreadable verdict: ${(err as Error).message}`))
            }
          })
        },
      )
      req.on('error', reject)
      // A message held in memory goes in one write; a stream through the pipeline.
      if (parts.every((p) => Buffer.isBuffer(p))) return void req.end(Buffer.concat(parts as Buffer[]))
      pipeline(
        Readable.from(
          (async function* () {
            for (const part of parts) {
              if (Buffer.isBuffer(part)) yield part
              else for await (const chunk of part) yield chunk as Buffer
            }
          })(),
        ),
        req,
      ).catch(reject)
    })
  } catch (err) {
    if (err instanceof FilterUnavailable) throw err
    const why = signal.aborted ? `no verdict within ${filter.timeoutMs} ms` : (err as Error).message
    throw new FilterUnavailable(`filter unavailable: ${why}`, { cause: err })
  }
}
