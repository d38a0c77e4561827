// The supervisor's status page in a real browser (headless Debian chromium), in process mode:
// the page `npm start` serves. test/docker.test.ts does the same for the compose stack.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startAppliance } from './support/appliance.js'
import { applianceHealth } from './support/supervisor.js'
import { browserUnavailable, renderStatusPage } from './support/browser.js'

test('the status page of npm start shows every service and the supervisor, running and healthy, in chromium', async (t) => {
  const why = await browserUnavailable()
  if (why) return t.skip(why)
  const services = ['smtp-ingress', 'delivery', 'submission']
  const a = await startAppliance({ services: [...services, 'supervisor'] })
  t.after(() => a.stop())
  // Every child past its start: ok or degraded (submission's self-signed certificate).
  const deadline = Date.now() + 60_000
  for (;;) {
    const { body } = await applianceHealth(a)
    if (services.every((s) => ['ok', 'degraded'].includes(body.services[s]?.health.status))) break
    if (Date.now() > deadline) assert.fail(`services not healthy: ${JSON.stringify(body)}`)
    await new Promise((r) => setTimeout(r, 500))
  }

  const page = await renderStatusPage(`http://127.0.0.1:${a.port('supervisor', 'status')}/`, 'status-page-process')
  console.log(`# screenshot of the process-mode status page: ${page.screenshot}`)
  assert.match(page.title, /^Facteur .*: (ok|degraded)$/)
  assert.deepEqual(page.rows.map((r) => r.service).sort(), [...services, 'supervisor'].sort())
  for (const row of page.rows) {
    assert.ok(row.visible, `${row.service} row visible`)
    assert.match(row.state, /^running/, JSON.stringify(row))
    assert.match(row.badge, /^(ok|degraded)$/, JSON.stringify(row))
  }
  const submission = page.rows.find((r) => r.service === 'submission')!
  assert.match(submission.health, /self-signed/, 'a check says why submission is degraded')
})
