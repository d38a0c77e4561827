// The supervisor's restart policy and its view of the appliance, against a scripted backend
// (the real backends are driven by test/durability.test.ts in process mode and
// test/docker.test.ts in docker mode).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { Counter, Registry } from 'prom-client'
import { createLogger } from '@facteur/logging'
import { registry } from '@facteur/metrics'
import type { Backend, ServiceState } from '../src/backend.js'
import { startWatchdog } from '../src/watchdog.js'
import { createAggregator } from '../src/aggregate.js'
import { applianceHealth } from '../src/appliance.js'
import { statusPage } from '../src/status-page.js'

const base = (name: string, over: Partial<ServiceState> = {}): ServiceState => ({
  name,
  state: 'running',
  running: true,
  pid: 100,
  exitCode: null,
  engineHealth: 'healthy',
  restarts: 0,
  startedAt: 0,
  hasHealthz: true,
  baseUrl: `http://${name}:1`,
  ports: {},
  ...over,
})

function harness(
  states: ServiceState[],
  limits = { unhealthyAfter: 3, restartLimit: 3, restartWindowMs: 3_600_000 },
  mode: Backend['mode'] = 'docker',
) {
  let clock = 1_000_000
  const healthz = new Map<string, { code: number; body: unknown } | Error>()
  const restarted: string[] = []
  let log = ''
  const backend: Backend = {
    mode,
    refresh: async () => states.map((s) => ({ ...s })),
    async restart(name) {
      restarted.push(name)
      const s = states.find((x) => x.name === name)!
      s.restarts++
    },
    async stop() {},
  }
  const logger = createLogger({
    service: 'supervisor',
    format: 'json',
    stream: new PassThrough().on('data', (c: Buffer) => (log += c.toString())),
  })
  const watchdog = startWatchdog({
    backend,
    logger,
    autostart: false,
    now: () => clock,
    config: { pollIntervalMs: 1000, ...limits },
    probe: async (url) => {
      if (url.endsWith('/metrics?format=json')) return { code: 200, body: [] }
      const r = healthz.get(new URL(url).hostname) ?? { code: 200, body: { status: 'ok', checks: {} } }
      if (r instanceof Error) throw r
      return r
    },
  })
  return {
    watchdog,
    backend,
    healthz,
    restarted,
    log: () => log,
    advance: (ms: number) => (clock += ms),
  }
}

test('starts a container that died again at the next poll, and leaves one stopped on purpose or with a configuration error', async () => {
  const states = [
    base('filter', { state: 'exited', running: false, exitCode: 137 }),
    base('delivery', { state: 'exited', running: false, exitCode: 0 }),
    base('submission', { state: 'exited', running: false, exitCode: 78 }),
  ]
  const h = harness(states)
  const reports = await h.watchdog.tick()
  assert.deepEqual(h.restarted, ['filter'])
  assert.equal(reports.find((r) => r.name === 'filter')?.lastRestart?.reason, 'exited with code 137')
  assert.match(reports.find((r) => r.name === 'submission')?.health.detail ?? '', /configuration error/)
  assert.match(h.log(), /"child":"filter".*"message":"restarted service"/)
})

test('restarts a running service only after SUPERVISOR_UNHEALTHY_AFTER failed polls in a row', async () => {
  const h = harness([base('delivery')])
  h.healthz.set('delivery', { code: 503, body: { status: 'fail', checks: { mailboxes: { status: 'fail', detail: 'EACCES' } } } })
  await h.watchdog.tick()
  await h.watchdog.tick()
  h.healthz.delete('delivery') // one good answer resets the count
  await h.watchdog.tick()
  h.healthz.set('delivery', new Error('no answer within 3000 ms'))
  await h.watchdog.tick()
  await h.watchdog.tick()
  assert.deepEqual(h.restarted, [])
  const reports = await h.watchdog.tick()
  assert.deepEqual(h.restarted, ['delivery'])
  assert.match(reports[0].lastRestart?.reason ?? '', /^unhealthy for 3 polls in a row: no answer/)
})

test('the restart reason names the failing checks of /healthz', async () => {
  const h = harness([base('delivery')])
  const detail = 'mailbox directory /var/mail is not writable by uid 5000 (EACCES)'
  h.healthz.set('delivery', {
    code: 503,
    body: { status: 'fail', checks: { spool: { status: 'ok' }, mailboxes: { status: 'fail', detail } } },
  })
  for (let i = 0; i < 3; i++) await h.watchdog.tick()
  const reports = await h.watchdog.look()
  assert.deepEqual(h.restarted, ['delivery'])
  assert.equal(reports[0].lastRestart?.reason, `unhealthy for 3 polls in a row: mailboxes: ${detail}`)
})

test('a service failing only because of a dependency (clamd down) is waited for, not restarted', async () => {
  const h = harness([base('filter', { engineHealth: 'unhealthy' })], { unhealthyAfter: 1, restartLimit: 5, restartWindowMs: 3_600_000 })
  const clamd = { status: 'fail', detail: 'clamd unreachable: ECONNREFUSED', dependency: 'clamd' }
  h.healthz.set('filter', { code: 503, body: { status: 'fail', checks: { clamd, spam: { status: 'ok' } } } })
  for (let i = 0; i < 3; i++) await h.watchdog.tick()
  assert.deepEqual(h.restarted, [])
  assert.equal((h.log().match(/service waits for a dependency/g) ?? []).length, 1)
  // A failure of its own besides is restarted as usual.
  h.healthz.set('filter', { code: 503, body: { status: 'fail', checks: { clamd, api: { status: 'fail', detail: 'stuck' } } } })
  await h.watchdog.tick()
  assert.deepEqual(h.restarted, ['filter'])
})

test("takes Docker's unhealthy verdict as a failure even when /healthz answers", async () => {
  const h = harness([base('smtp-ingress', { engineHealth: 'unhealthy' })], {
    unhealthyAfter: 1,
    restartLimit: 5,
    restartWindowMs: 3_600_000,
  })
  await h.watchdog.tick()
  assert.deepEqual(h.restarted, ['smtp-ingress'])
})

test('does not count a service that is still starting', async () => {
  const h = harness([base('filter', { engineHealth: 'starting' })], { unhealthyAfter: 1, restartLimit: 5, restartWindowMs: 3_600_000 })
  h.healthz.set('filter', new Error('ECONNREFUSED'))
  const reports = await h.watchdog.tick()
  assert.equal(reports[0].health.status, 'starting')
  assert.deepEqual(h.restarted, [])
})

test('backs off between restarts, gives up past the limit, and tries again once the service was healthy', async () => {
  const states = [base('filter', { state: 'exited', running: false, exitCode: 1 })]
  const h = harness(states, { unhealthyAfter: 1, restartLimit: 2, restartWindowMs: 3_600_000 })
  await h.watchdog.tick()
  assert.equal(h.restarted.length, 1)
  h.advance(5_000)
  await h.watchdog.tick()
  assert.equal(h.restarted.length, 1, 'within the 10 s backoff')
  h.advance(6_000)
  await h.watchdog.tick()
  assert.equal(h.restarted.length, 2)
  h.advance(60_000)
  const reports = await h.watchdog.tick()
  assert.equal(h.restarted.length, 2, 'limit reached')
  assert.equal(reports[0].gaveUp, true)
  assert.match(h.log(), /giving up on service: too many restarts/)
  Object.assign(states[0], { state: 'running', running: true, exitCode: null })
  assert.equal((await h.watchdog.tick())[0].gaveUp, false)
})

test('counts every restart the backend reports in facteur_restarts_total', async () => {
  const states = [base('spamassassin', { hasHealthz: false, baseUrl: null })]
  const h = harness(states)
  await h.watchdog.tick()
  states[0].restarts = 2 // e.g. Docker's restart policy
  await h.watchdog.tick()
  const family = (await registry.getMetricsAsJSON()).find((f) => f.name === 'facteur_restarts_total')
  assert.equal(family?.values.find((v) => v.labels.service === 'spamassassin')?.value, 2)
})

test('/health shows why a service is restarting while the restart is still under way', async () => {
  const h = harness([base('delivery')], { unhealthyAfter: 1, restartLimit: 3, restartWindowMs: 3_600_000 })
  let done!: () => void
  const pending = new Promise<void>((resolve) => (done = resolve))
  const restart = h.backend.restart
  h.backend.restart = async (name, reason) => {
    await restart(name, reason) // counts it, as the Docker backend does before `docker restart`
    await pending
  }
  h.healthz.set('delivery', { code: 503, body: { status: 'fail', checks: { mailboxes: { status: 'fail', detail: 'EACCES' } } } })
  const ticking = h.watchdog.tick()
  await new Promise((r) => setImmediate(r))
  const during = (await h.watchdog.look())[0]
  assert.equal(during.restarts, 1)
  assert.equal(during.lastRestart?.reason, 'unhealthy for 1 polls in a row: mailboxes: EACCES')
  done()
  await ticking
})

test("counts a child's restarts before the first look in process mode (its own), not a container's earlier ones", async () => {
  const limits = { unhealthyAfter: 3, restartLimit: 3, restartWindowMs: 3_600_000 }
  await harness([base('child-before-first-look', { restarts: 1 })], limits, 'process').watchdog.tick()
  await harness([base('container-before-first-look', { restarts: 3 })], limits, 'docker').watchdog.tick()
  const values = (await registry.getMetricsAsJSON()).find((f) => f.name === 'facteur_restarts_total')?.values ?? []
  assert.equal(values.find((v) => v.labels.service === 'child-before-first-look')?.value, 1)
  assert.equal(values.find((v) => v.labels.service === 'container-before-first-look')?.value, 0)
})

test("sums the services' counters without ever going back: a restarted service starts from 0 again", () => {
  const r = new Registry()
  const c = new Counter({ name: 'facteur_messages_received_total', help: 'h', labelNames: ['service'], registers: [r] })
  const agg = createAggregator(r)
  const sample = (start: number, value: number) => [
    { name: 'facteur_process_start_time_seconds', help: '', type: 'gauge', values: [{ value: start, labels: {} }] },
    { name: 'facteur_messages_received_total', help: '', type: 'counter', values: [{ value, labels: { service: 'smtp-ingress' } }] },
  ]
  agg.add('smtp-ingress', sample(1, 5))
  agg.add('smtp-ingress', sample(1, 7))
  agg.add('smtp-ingress', sample(1, 6)) // a late, older answer
  agg.add('smtp-ingress', sample(2, 3)) // restarted
  agg.add('submission', [{ name: 'facteur_unknown_total', help: '', type: 'counter', values: [{ value: 9, labels: {} }] }])
  return r.getMetricsAsJSON().then((families) => {
    void c
    assert.equal(families.find((f) => f.name === 'facteur_messages_received_total')?.values[0].value, 10)
  })
})

test('/health is fail when one service fails, degraded when one is degraded, and the page shows every service', async () => {
  const h = harness([base('smtp-ingress'), base('delivery'), base('clamav', { hasHealthz: false, baseUrl: null })])
  h.healthz.set('smtp-ingress', {
    code: 200,
    body: { status: 'degraded', checks: { tls: { status: 'degraded', detail: 'self-signed certificate' } } },
  })
  let health = await applianceHealth({ mode: 'docker', project: 'facteur', reports: await h.watchdog.look(), queueDepth: 2, registry })
  assert.equal(health.status, 'degraded')
  assert.equal(health.services.clamav.health.status, 'ok')
  assert.equal(health.queue.depth, 2)
  const page = statusPage(health)
  for (const name of ['smtp-ingress', 'delivery', 'clamav']) assert.match(page, new RegExp(`data-service="${name}"`))
  assert.match(page, /self-signed certificate/)
  h.healthz.set('delivery', { code: 503, body: { status: 'fail', checks: { spool: { status: 'fail', detail: '<EACCES>' } } } })
  health = await applianceHealth({ mode: 'docker', reports: await h.watchdog.look(), queueDepth: null, registry })
  assert.equal(health.status, 'fail')
  assert.match(statusPage(health), /&lt;EACCES&gt;/)
})
