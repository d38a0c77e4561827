// The appliance as the hostile tests run it with content scanning: the filter service with a
// real clamd (spamd off: its scans take seconds), stopped when the test ends.
import type { TestContext } from 'node:test'
import { startAppliance, type Appliance } from '../support/appliance.js'
import { startClamd, type Clamd } from '../support/clamd.js'
import { sampleMemory } from './figures.js'

export async function startScannedAppliance(
  t: TestContext,
  opts: { users: Record<string, string>; env?: Record<string, string> },
): Promise<{ clamd: Clamd; app: Appliance; port: number; mem: ReturnType<typeof sampleMemory> }> {
  const clamd = await startClamd()
  t.after(() => clamd.close())
  const app = await startAppliance({
    timeoutMs: 90_000,
    services: ['filter', 'smtp-ingress', 'delivery'],
    users: opts.users,
    env: { CLAMAV_PORT: String(clamd.port), SPAM_ENGINE: 'off', ...opts.env },
  })
  t.after(() => app.stop())
  return { clamd, app, port: app.port('smtp-ingress', 'smtp'), mem: sampleMemory(app) }
}
