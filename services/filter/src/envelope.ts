// The request's envelope: JSON in the X-Facteur-Envelope header, checked before any scan.
import { isIP } from 'node:net'
import type { FilterEnvelope } from '@facteur/filter-client'

export class BadRequest extends Error {
  override name = 'BadRequest'
}

export function parseEnvelope(header: string | string[] | undefined): FilterEnvelope {
  if (typeof header !== 'string' || header === '') throw new BadRequest('missing X-Facteur-Envelope header')
  let v: Record<string, unknown>
  try {
    v = JSON.parse(header) as Record<string, unknown>
  } catch {
    throw new BadRequest('X-Facteur-Envelope is not JSON')
  }
  if (!v || typeof v !== 'object') throw new BadRequest('X-Facteur-Envelope is not a JSON object')
  const str = (k: string, optional = false): string | undefined => {
    const x = v[k]
    if (x === undefined && optional) return undefined
    if (typeof x !== 'string') throw new BadRequest(`X-Facteur-Envelope: ${k} must be a string`)
    return x
  }
  const direction = str('direction')
  if (direction !== 'inbound' && direction !== 'outbound') throw new BadRequest('X-Facteur-Envelope: direction must be inbound or outbound')
  const ip = str('ip') as string
  if (!isIP(ip.replace(/^::ffff:/i, ''))) throw new BadRequest('X-Facteur-Envelope: ip must be an IP address')
  if (v.proxied !== undefined && v.proxied !== true) throw new BadRequest('X-Facteur-Envelope: proxied must be true when present')
  const recipients = v.recipients
  if (!Array.isArray(recipients) || recipients.length === 0 || !recipients.every((r) => typeof r === 'string'))
    throw new BadRequest('X-Facteur-Envelope: recipients must be a non-empty list of addresses')
  return {
    direction,
    ip: ip.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1'),
    ...(v.proxied ? { proxied: true as const } : {}),
    helo: str('helo') as string,
    sender: str('sender') as string,
    recipients: recipients as string[],
    user: str('user', true),
    queueId: str('queueId', true),
  }
}
