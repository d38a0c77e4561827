import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startSpamd, GTUBE, type Spamd } from '../../../test/support/spamd.js'
import { startDns, type Dns } from '../../../test/support/dnsmasq.js'
import { check, health, message, startTestFilter, type TestFilter } from './harness.js'

// Local rules with known scores, so a message lands where a test wants it: our thresholds
// are 5 (tag), 8 (junk) and 15 (reject); a well-formed message scores about 0 without them.
const RULES = [
  'body FACTEUR_SIX /facteur-six-points/',
  'score FACTEUR_SIX 6.0',
  'body FACTEUR_TEN /facteur-ten-points/',
  'score FACTEUR_TEN 10.0',
  'body FACTEUR_TWENTY /facteur-twenty-points/',
  'score FACTEUR_TWENTY 20.0',
].join('\n')

let spamd: Spamd
let dns: Dns
let filter: TestFilter
before(async () => {
  dns = await startDns()
  spamd = await startSpamd({ rules: RULES })
  filter = await startTestFilter(env())
})
after(async () => {
  await filter?.close()
  await spamd?.close()
  await dns?.close()
})

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    CLAMAV_ENABLED: 'false',
    SPAM_ENGINE: 'spamassassin',
    SPAMD_HOST: '127.0.0.1',
    SPAMD_PORT: String(spamd.port),
    SPAM_TAG_SCORE: '5',
    SPAM_JUNK_SCORE: '8',
    SPAM_REJECT_SCORE: '15',
    DNS_SERVERS: dns.server,
    ...extra,
  }
}

test('refuses GTUBE with 550 5.7.1: SpamAssassin scores it 1000', async () => {
  const { verdict } = await check(filter.port, message({ body: GTUBE }))
  assert.equal(verdict.action, 'reject')
  assert.equal(verdict.code, 550)
  assert.equal(verdict.enhanced, '7.1')
  assert.equal(verdict.text, 'Message refused as spam')
  assert.equal(verdict.checks.spam.status, 'scanned')
  assert.ok(verdict.checks.spam.status === 'scanned' && verdict.checks.spam.score >= 1000)
  assert.ok(verdict.checks.spam.status === 'scanned' && verdict.checks.spam.rules.includes('GTUBE'))
})

test('accepts ham with X-Spam-Status: No and its score', async () => {
  const { verdict } = await check(filter.port, message())
  assert.equal(verdict.action, 'accept')
  assert.match(verdict.headers, /^X-Spam-Score: -?\d+\.\d\r$/m)
  assert.match(verdict.headers, /^X-Spam-Status: No, score=-?\d+\.\d required=5\.0 engine=spamassassin\r$/m)
  assert.doesNotMatch(verdict.headers, /X-Spam-Flag/)
  assert.match(verdict.headers, /^Authentication-Results: mx\.ours\.example;/)
})

test('a local rule worth 6 points tags the message with X-Spam-Flag: YES', async () => {
  const { verdict } = await check(filter.port, message({ body: 'Hello Bob, facteur-six-points today.' }))
  assert.equal(verdict.action, 'tag')
  assert.match(verdict.headers, /^X-Spam-Flag: YES\r$/m)
  assert.match(verdict.headers, /^X-Spam-Status: Yes, score=\d+\.\d required=5\.0 engine=spamassassin\r\n\ttests=.*FACTEUR_SIX/m)
})

test('a local rule worth 10 points files the message as junk', async () => {
  const { verdict } = await check(filter.port, message({ body: 'Hello Bob, facteur-ten-points today.' }))
  assert.equal(verdict.action, 'junk')
  assert.match(verdict.headers, /^X-Spam-Flag: YES\r$/m)
})

test('a local rule worth 20 points refuses the message', async () => {
  const { verdict } = await check(filter.port, message({ body: 'Hello Bob, facteur-twenty-points today.' }))
  assert.equal(verdict.action, 'reject')
  assert.equal(verdict.code, 550)
})

test('never refuses spam whose only recipients are postmaster@ and abuse@: it is tagged', async () => {
  const { verdict } = await check(filter.port, message({ body: GTUBE }), { recipients: ['postmaster@ours.example', 'Abuse@ours.example'] })
  assert.equal(verdict.action, 'tag')
  assert.match(verdict.headers, /^X-Spam-Flag: YES\r$/m)
  const mixed = await check(filter.port, message({ body: GTUBE }), { recipients: ['postmaster@ours.example', 'bob@ours.example'] })
  assert.equal(mixed.verdict.action, 'reject')
})

test('skips the spam scan of a message larger than SPAM_MAX_SIZE, not the rest', async (t) => {
  const small = await startTestFilter(env({ SPAM_MAX_SIZE: '4K' }))
  t.after(() => small.close())
  const big = message({ body: `${GTUBE}\r\n${'All work and no play makes Jack a dull boy.\r\n'.repeat(200)}` })
  const { verdict } = await check(small.port, big)
  assert.equal(verdict.action, 'accept')
  assert.deepEqual(verdict.checks.spam, { status: 'skipped', reason: 'size' })
  assert.doesNotMatch(verdict.headers, /X-Spam/)
  assert.match(verdict.headers, /^Authentication-Results:/)
})

test('outbound mail is scanned and tagged but not refused, as SPAM_OUTBOUND=tag says', async () => {
  const { verdict } = await check(filter.port, message({ body: GTUBE }), {
    direction: 'outbound',
    user: 'alice@ours.example',
    sender: 'alice@ours.example',
    recipients: ['carol@remote.example'],
  })
  assert.equal(verdict.action, 'tag')
  assert.match(verdict.headers, /^X-Spam-Flag: YES\r$/m)
  // Authenticated users' mail is not SPF/DMARC-checked.
  assert.doesNotMatch(verdict.headers, /Authentication-Results/)
  assert.equal(verdict.checks.auth.status, 'skipped')
})

test('SPAM_OUTBOUND=reject refuses outbound spam', async (t) => {
  const strict = await startTestFilter(env({ SPAM_OUTBOUND: 'reject' }))
  t.after(() => strict.close())
  const { verdict } = await check(strict.port, message({ body: GTUBE }), {
    direction: 'outbound',
    user: 'alice@ours.example',
    sender: 'alice@ours.example',
    recipients: ['carol@remote.example'],
  })
  assert.equal(verdict.action, 'reject')
})

test('with spamd down the filter follows FILTER_FAILURE and health reports the engine', async (t) => {
  const accepting = await startTestFilter(env({ FILTER_FAILURE: 'accept' }))
  t.after(() => accepting.close())
  await spamd.stop()
  try {
    const tempfail = await check(filter.port, message())
    assert.equal(tempfail.verdict.action, 'tempfail')
    assert.equal(tempfail.verdict.code, 451)
    assert.equal((await health(filter.port)).status, 503)
    const accepted = await check(accepting.port, message())
    assert.equal(accepted.verdict.action, 'accept')
    assert.match(accepted.verdict.headers, /^X-Facteur-Filter: not scanned \(spam scanner unavailable\)\r$/m)
    assert.equal((await health(accepting.port)).body.status, 'degraded')
  } finally {
    await spamd.start()
  }
  // A freshly started spamd may take longer than the health check's PING bound (2 s) to answer.
  const deadline = Date.now() + 30_000
  while ((await health(filter.port)).status !== 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500))
  assert.equal((await health(filter.port)).status, 200)
})
