// The appliance's services as the supervisor knows them: where each entry point is, and which
// variable holds each of its ports (so a restarted service gets the port it had).
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Config } from '@facteur/config'

export type ServiceDef = {
  name: string
  dir: string
  ports: Record<string, string>
  /** Started only when this holds (the filter: FILTER_URL left empty, so the appliance runs its own). */
  when?: (config: Config) => boolean
  /**
   * A variable the services after this one need from it: the supervisor starts this service
   * first, waits for `listener` to be announced, and gives the later ones `variable`.
   */
  provides?: { variable: string; listener: string; value: (address: string, port: number) => string }
}

export const SERVICES: readonly ServiceDef[] = [
  // First: the receiving services call it during DATA, at the URL it was given when it started.
  {
    name: 'filter',
    dir: 'filter',
    ports: { http: 'FILTER_PORT', health: 'FILTER_PORT' },
    when: (config) => config.filter.auto,
    provides: { variable: 'FILTER_URL', listener: 'http', value: (address, port) => `http://${loopbackFor(address)}:${port}` },
  },
  { name: 'smtp-ingress', dir: 'smtp-ingress', ports: { smtp: 'SMTP_PORT', health: 'INGRESS_HEALTH_PORT' } },
  { name: 'delivery', dir: 'delivery', ports: { health: 'DELIVERY_HEALTH_PORT' } },
  {
    name: 'submission',
    dir: 'submission',
    ports: { submission: 'SUBMISSION_PORT', submissions: 'SUBMISSIONS_PORT', alt: 'SUBMISSION_ALT_PORT', health: 'SUBMISSION_HEALTH_PORT' },
  },
]

/** A wildcard listener is reached on loopback; an IPv6 address goes in brackets (RFC 3986 §3.2.2). */
export function loopbackFor(address: string): string {
  if (address === '0.0.0.0' || address === '') return '127.0.0.1'
  if (address === '::') return '[::1]'
  return address.includes(':') ? `[${address}]` : address
}

const here = path.dirname(fileURLToPath(import.meta.url))
/** Running from TypeScript sources (npm start, tests) or from the build (the image). */
const fromSource = import.meta.url.endsWith('.ts')

export function entryPoint(def: ServiceDef): string {
  // here = services/supervisor/src (or dist)
  return path.resolve(here, '..', '..', def.dir, fromSource ? 'src/main.ts' : 'dist/main.js')
}
