// REPORT_INTERVAL on the running appliance: the supervisor mails REPORT_RECIPIENT a summary of
// what the services counted (here every 3 s instead of daily). Mail accepted and refused by the MX
// is summed over the reports that arrive, each covering its own period; the counters are the
// services' /metrics, added up by the supervisor.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { startAppliance, type Appliance } from './support/appliance.js'
import { swaksMail, lastReply } from './support/swaks.js'
import { readMbox } from './support/mbox.js'
import { waitFor } from './support/queue.js'

let app: Appliance

before(async () => {
  app = await startAppliance({
    users: { 'bob@ours.example': 'pw-bob', 'boss@ours.example': 'pw-boss' },
    env: { REPORT_INTERVAL: '3s', REPORT_RECIPIENT: 'boss@ours.example', SUPERVISOR_POLL_INTERVAL: '500ms' },
  })
})

after(() => app?.stop())

const reports = async (): Promise<string[]> =>
  (await readMbox(path.join(app.mailDir, 'boss'))).filter((m) => /^Subject: Facteur report for mx\.ours\.example: /m.test(m))

/** The number on a report's row, e.g. `Received (queued)      2  smtp-ingress 2`. */
const row = (report: string, name: string): number =>
  Number(new RegExp(`^${name.replace(/[()]/g, '\\$&')} +(\\d+)`, 'm').exec(report)?.[1] ?? NaN)

test('the postmaster gets a report each interval; summed, they count the mail received, delivered and refused', async () => {
  for (const subject of ['one', 'two']) {
    const r = await swaksMail(app.port('smtp-ingress', 'smtp'), { sender: 'a@remote.example', to: 'bob@ours.example', subject })
    assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
  }
  const refused = await swaksMail(app.port('smtp-ingress', 'smtp'), { sender: 'a@remote.example', to: 'nobody@ours.example' })
  assert.equal(lastReply(refused, 'RCPT'), '550 5.1.1 No such user here')

  const all = await waitFor(
    'reports counting the two messages and the refusal',
    async () => {
      const got = await reports()
      const sum = (name: string) => got.reduce((n, r) => n + row(r, name), 0)
      return sum('Received (queued)') >= 2 && sum('Refused in the dialogue') >= 1 && sum('Delivered') >= 2 && got
    },
    { timeoutMs: 30_000, context: () => app.output().slice(-2000) },
  )
  const sum = (name: string) => all.reduce((n, r) => n + row(r, name), 0)
  assert.equal(sum('Received (queued)'), 2)
  assert.equal(sum('Refused in the dialogue'), 1)
  assert.ok(all.some((r) => /^Received \(queued\) +\d+ +smtp-ingress \d+$/m.test(r)))
  assert.ok(all.some((r) => /^Refused in the dialogue +1 +550 5\.1\.1 \(RCPT\) 1$/m.test(r)))
  const [first] = all
  assert.match(first, /^From: Facteur <MAILER-DAEMON@mx\.ours\.example>$/m)
  assert.match(first, /^Auto-Submitted: auto-generated$/m)
  assert.match(first, /^Return-Path: <>$/m)
  assert.match(first, /^In the queue now +\d+$/m)
})
