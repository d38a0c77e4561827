// The report's text from the counters of one period.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { composeReport } from '../src/report.js'

const key = (name: string, labels: Record<string, string>) => `${name}${JSON.stringify(labels)}`

test('rows sum each counter over its labels, the breakdowns largest first, at most five', () => {
  const counts = {
    [key('facteur_messages_received_total', { service: 'smtp-ingress' })]: 40,
    [key('facteur_messages_received_total', { service: 'submission' })]: 2,
    [key('facteur_deliveries_total', { outcome: 'delivered' })]: 41,
    [key('facteur_deliveries_total', { outcome: 'deferred' })]: 3,
    [key('facteur_deliveries_total', { outcome: 'bounced' })]: 1,
    ...Object.fromEntries(
      ['1.1', '7.1', '5.1', '7.25', '4.3', '1.8'].map((e, i) => [
        key('facteur_messages_rejected_total', { service: 'smtp-ingress', cmd: 'RCPT', code: '550', enhanced: e }),
        i + 1,
      ]),
    ),
  }
  const { subject, text } = composeReport(counts, {
    hostname: 'mx.ours.example',
    from: new Date('2026-11-29T00:00:00Z'),
    to: new Date('2026-11-30T00:00:00Z'),
    queue: 4,
  })
  assert.equal(subject, 'Facteur report for mx.ours.example: 42 received, 41 delivered, 1 bounced, 21 refused')
  assert.match(text, /^Received \(queued\) +42 {2}smtp-ingress 40, submission 2$/m)
  assert.match(text, /^Refused in the dialogue +21 {2}550 1\.8 \(RCPT\) 6, 550 4\.3 \(RCPT\) 5, .*, 1 more$/m)
  assert.match(text, /^Deferred attempts +3$/m)
  assert.match(text, /^AUTH failures +0$/m)
  assert.match(text, /^In the queue now +4$/m)
})
