import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startClamd, EICAR, EICAR_SIGNATURE, type Clamd } from '../../../test/support/clamd.js'
import { startDns, type Dns } from '../../../test/support/dnsmasq.js'
import { check, health, INBOUND, message, request, startTestFilter, withAttachment } from './harness.js'

let clamd: Clamd
let dns: Dns
before(async () => {
  dns = await startDns()
  clamd = await startClamd()
})
after(async () => {
  await Promise.all([clamd?.close(), dns?.close()])
})

const env = (extra: Record<string, string> = {}): Record<string, string> => ({
  CLAMAV_HOST: '127.0.0.1',
  CLAMAV_PORT: String(clamd.port),
  SPAM_ENGINE: 'off',
  DNS_SERVERS: dns.server,
  ...extra,
})

test('refuses the EICAR test file as an attachment with 554 5.7.1 naming the signature', async (t) => {
  const filter = await startTestFilter(env())
  t.after(() => filter.close())
  const { status, verdict } = await check(filter.port, withAttachment(EICAR))
  assert.equal(status, 200)
  assert.equal(verdict.action, 'reject')
  assert.equal(verdict.code, 554)
  assert.equal(verdict.enhanced, '7.1')
  assert.equal(verdict.text, `Virus found: ${EICAR_SIGNATURE}`)
  assert.deepEqual(verdict.checks.virus, { status: 'infected', signatures: [EICAR_SIGNATURE] })
})

test('accepts a clean message with an Authentication-Results field under our authserv-id', async (t) => {
  const filter = await startTestFilter(env())
  t.after(() => filter.close())
  const { verdict } = await check(filter.port, withAttachment('just a harmless text file\r\n', 'notes.txt'))
  assert.equal(verdict.action, 'accept')
  assert.deepEqual(verdict.checks.virus, { status: 'clean' })
  assert.match(verdict.headers, /^Authentication-Results: mx\.ours\.example;\r\n /)
  assert.match(verdict.headers, /spf=none/)
  assert.doesNotMatch(verdict.headers, /X-Facteur-Filter/)
})

test('with clamd down, FILTER_FAILURE=tempfail answers 451 4.7.1 and health turns 503, then back to 200', async (t) => {
  const filter = await startTestFilter(env({ FILTER_FAILURE: 'tempfail' }))
  t.after(() => filter.close())
  assert.equal((await health(filter.port)).status, 200)
  await clamd.stop()
  try {
    const { verdict } = await check(filter.port, message())
    assert.equal(verdict.action, 'tempfail')
    assert.equal(verdict.code, 451)
    assert.equal(verdict.enhanced, '7.1')
    assert.equal(verdict.checks.virus.status, 'error')
    const h = await health(filter.port)
    assert.equal(h.status, 503)
    assert.equal(h.body.checks.clamav.status, 'fail')
  } finally {
    await clamd.start()
  }
  const back = await health(filter.port)
  assert.equal(back.status, 200)
  assert.equal(back.body.checks.clamav.status, 'ok')
})

test('with clamd down, FILTER_FAILURE=accept accepts the message marked as not scanned', async (t) => {
  const filter = await startTestFilter(env({ FILTER_FAILURE: 'accept' }))
  t.after(() => filter.close())
  await clamd.stop()
  try {
    const { verdict } = await check(filter.port, message())
    assert.equal(verdict.action, 'accept')
    assert.match(verdict.headers, /^X-Facteur-Filter: not scanned \(virus scanner unavailable\)\r$/m)
    const h = await health(filter.port)
    assert.equal(h.status, 200)
    assert.equal(h.body.status, 'degraded')
  } finally {
    await clamd.start()
  }
})

test('CLAMAV_ENABLED=false runs without clamd and health says degraded with HTTP 200', async (t) => {
  const filter = await startTestFilter(env({ CLAMAV_ENABLED: 'false', CLAMAV_PORT: '1' }))
  t.after(() => filter.close())
  const h = await health(filter.port)
  assert.equal(h.status, 200)
  assert.equal(h.body.status, 'degraded')
  assert.match(h.body.checks.clamav.detail ?? '', /CLAMAV_ENABLED=false/)
  // A name no FILTER_BANNED_EXTENSIONS default bans: the virus scan alone is in question here.
  const { verdict } = await check(filter.port, withAttachment(EICAR, 'invoice.txt'))
  assert.equal(verdict.action, 'accept')
  assert.deepEqual(verdict.checks.virus, { status: 'off' })
})

test('answers 400 to a request without an envelope and 405 to a GET', async (t) => {
  const filter = await startTestFilter(env())
  t.after(() => filter.close())
  const missing = await request(filter.port, 'POST', '/v1/check', {}, message())
  assert.equal(missing.status, 400)
  assert.match(missing.body, /X-Facteur-Envelope/)
  const bad = await request(filter.port, 'POST', '/v1/check', { 'x-facteur-envelope': '{"direction":"sideways"}' }, message())
  assert.equal(bad.status, 400)
  const proxied = JSON.stringify({ ...INBOUND, proxied: 'yes' })
  const notTrue = await request(filter.port, 'POST', '/v1/check', { 'x-facteur-envelope': proxied }, message())
  assert.deepEqual([notTrue.status, notTrue.body], [400, '{"error":"X-Facteur-Envelope: proxied must be true when present"}'])
  assert.equal((await request(filter.port, 'GET', '/v1/check', {})).status, 405)
})
