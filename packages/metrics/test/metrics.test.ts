import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { createLogger } from '@facteur/logging'
import { registry } from '@facteur/metrics'

async function value(name: string, labels: Record<string, string> = {}): Promise<number> {
  const family = (await registry.getMetricsAsJSON()).find((f) => f.name === name)
  const sample = family?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
  return sample?.value ?? 0
}

test('counts the outcome lines a service logs, whatever LOG_LEVEL lets through', async () => {
  const logger = createLogger({ service: 'smtp-ingress', level: 'error', stream: new PassThrough() })
  const before = await value('facteur_messages_received_total', { service: 'smtp-ingress' })
  logger.info('queued', { queueId: 'Q1', remoteIp: '192.0.2.1', code: 250 })
  logger.info('refused', { cmd: 'RCPT', code: 550, enhanced: '5.1.1', reason: 'No such user here' })
  logger.info('refused', { cmd: 'AUTH', code: 535, enhanced: '5.7.8' })
  assert.equal(await value('facteur_messages_received_total', { service: 'smtp-ingress' }), before + 1)
  assert.equal(await value('facteur_messages_rejected_total', { service: 'smtp-ingress', cmd: 'RCPT', code: '550', enhanced: '5.1.1' }), 1)
  assert.equal(await value('facteur_auth_failures_total', { service: 'smtp-ingress' }), 1)
})

test('counts delivery outcomes per recipient, a failure as bounced, and stamps the last delivery', async () => {
  const logger = createLogger({ service: 'delivery', stream: new PassThrough() })
  logger.info('delivered', { queueId: 'Q1', rcpt: 'a@x.example' })
  logger.info('deferred', { queueId: 'Q1', rcpt: 'b@y.example' })
  logger.info('failed', { queueId: 'Q1', rcpt: 'c@y.example' })
  logger.info('notice queued', { queueId: 'Q2' })
  assert.equal(await value('facteur_deliveries_total', { outcome: 'delivered' }), 1)
  assert.equal(await value('facteur_deliveries_total', { outcome: 'deferred' }), 1)
  assert.equal(await value('facteur_deliveries_total', { outcome: 'bounced' }), 1)
  assert.ok(Math.abs((await value('facteur_last_delivery_timestamp_seconds')) - Date.now() / 1000) < 5)
  assert.equal(await value('facteur_messages_received_total', { service: 'delivery' }), 0)
})

test('counts filter verdicts, virus and spam results from the verdict line', async () => {
  const logger = createLogger({ service: 'filter', stream: new PassThrough() })
  logger.info('verdict', {
    direction: 'inbound',
    action: 'reject',
    code: 554,
    reason: 'Virus found: Eicar-Test-Signature',
    virus: 'Eicar-Test-Signature',
    spam: 0.5,
  })
  logger.info('verdict', {
    direction: 'inbound',
    action: 'reject',
    code: 550,
    reason: 'Message refused as spam',
    virus: 'clean',
    spam: 1000,
  })
  logger.info('verdict', { direction: 'outbound', action: 'accept', virus: 'clean', spam: 'skipped' })
  assert.equal(await value('facteur_filter_verdicts_total', { direction: 'inbound', action: 'reject' }), 2)
  assert.equal(await value('facteur_virus_verdicts_total', { result: 'infected' }), 1)
  assert.equal(await value('facteur_virus_verdicts_total', { result: 'clean' }), 2)
  assert.equal(await value('facteur_spam_verdicts_total', { result: 'spam' }), 1)
  assert.equal(await value('facteur_spam_verdicts_total', { result: 'ham' }), 1)
  assert.equal(await value('facteur_spam_verdicts_total', { result: 'skipped' }), 1)
})
