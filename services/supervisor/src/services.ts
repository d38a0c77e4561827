// The appliance's services as the supervisor knows them: where each entry point is, and which
// variable holds each of its ports (so a restarted service gets the port it had).
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export type ServiceDef = { name: string; dir: string; ports: Record<string, string> }

export const SERVICES: readonly ServiceDef[] = [
  { name: 'smtp-ingress', dir: 'smtp-ingress', ports: { smtp: 'SMTP_PORT', health: 'INGRESS_HEALTH_PORT' } },
  { name: 'delivery', dir: 'delivery', ports: { health: 'DELIVERY_HEALTH_PORT' } },
  { name: 'submission', dir: 'submission', ports: { submission: 'SUBMISSION_PORT', submissions: 'SUBMISSIONS_PORT', alt: 'SUBMISSION_ALT_PORT', health: 'SUBMISSION_HEALTH_PORT' } },
]

const here = path.dirname(fileURLToPath(import.meta.url))
/** Running from TypeScript sources (npm start, tests) or from the build (the image). */
const fromSource = import.meta.url.endsWith('.ts')

export function entryPoint(def: ServiceDef): string {
  // here = services/supervisor/src (or dist)
  return path.resolve(here, '..', '..', def.dir, fromSource ? 'src/main.ts' : 'dist/main.js')
}
