// Every listener a hostile test attacks (the MX and the three submission ports), with the swaks
// arguments a real client sends there (alice, password "pw", on the submission ports), and the
// appliance those tests start to attack them.
import type { TestContext } from 'node:test'
import { startAppliance, type Appliance } from '../support/appliance.js'
import type { Mode } from './wire.js'
import { sampleMemory, waitForListeners } from './figures.js'

export type Listener = { name: string; service: string; listener: string; mode: Mode; real: string[] }

const AUTH = ['--auth', 'PLAIN', '--auth-user', 'alice@ours.example', '--auth-password', 'pw', '--from', 'alice@ours.example']

export const LISTENERS: Listener[] = [
  { name: ':25', service: 'smtp-ingress', listener: 'smtp', mode: 'plain', real: ['--from', 'a@remote.example'] },
  { name: ':587', service: 'submission', listener: 'submission', mode: 'plain', real: ['--tls', ...AUTH] },
  { name: ':465', service: 'submission', listener: 'submissions', mode: 'implicit', real: ['--tlsc', ...AUTH] },
  { name: 'SUBMISSION_ALT_PORT', service: 'submission', listener: 'alt', mode: 'implicit', real: ['--tlsc', ...AUTH] },
]

/**
 * The appliance a test of the listeners attacks: the MX, submission (and its alternate port when
 * `env` sets SUBMISSION_ALT_PORT) and delivery, with alice (password "pw"); stopped after the test,
 * its memory sampled from the start.
 */
export async function startListeners(
  t: Pick<TestContext, 'after'>,
  env: Record<string, string> = {},
): Promise<{ app: Appliance; mem: ReturnType<typeof sampleMemory> }> {
  const app = await startAppliance({
    timeoutMs: 90_000,
    services: ['smtp-ingress', 'delivery', 'submission'],
    users: { 'alice@ours.example': 'pw' },
    env,
  })
  t.after(() => app.stop())
  await waitForListeners(app, 'submission', ['submission', 'submissions', ...('SUBMISSION_ALT_PORT' in env ? ['alt'] : [])])
  return { app, mem: sampleMemory(app) }
}
