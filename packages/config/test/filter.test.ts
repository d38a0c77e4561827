import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig } from '@facteur/config'

const base = { MAIL_DOMAIN: 'ours.example' }

test('the filter defaults: its own URL on FILTER_PORT, tempfail, clamd and spamd on their ports', () => {
  const f = loadConfig(base).filter
  assert.equal(f.url, 'http://127.0.0.1:8030')
  assert.equal(f.auto, true)
  assert.equal(f.failure, 'tempfail')
  assert.deepEqual(f.clamav, { enabled: true, host: '127.0.0.1', port: 3310 })
  assert.equal(f.spam.engine, 'spamassassin')
  assert.deepEqual([f.spam.tagScore, f.spam.junkScore, f.spam.rejectScore], [5, 8, 15])
  assert.ok(Object.isFrozen(f.spam))
  assert.equal(loadConfig({ ...base, FILTER_URL: 'off' }).filter.url, null)
  assert.equal(loadConfig({ ...base, FILTER_URL: 'http://filter:8030/' }).filter.url, 'http://filter:8030')
})

test('a bad filter setting stops start-up naming the variable', () => {
  assert.throws(() => loadConfig({ ...base, FILTER_URL: 'ftp://x' }), /FILTER_URL="ftp:\/\/x" is not valid/)
  assert.throws(() => loadConfig({ ...base, FILTER_FAILURE: 'maybe' }), /FILTER_FAILURE="maybe" .* one of tempfail, accept/)
  assert.throws(() => loadConfig({ ...base, SPAM_TAG_SCORE: 'five' }), /SPAM_TAG_SCORE="five" is not valid: expected a score/)
  assert.throws(() => loadConfig({ ...base, SPAM_JUNK_SCORE: '3' }), /SPAM_JUNK_SCORE="3" .* no lower than SPAM_TAG_SCORE \(5\)/)
  assert.throws(() => loadConfig({ ...base, SPAM_ENGINE: 'bogofilter' }), /SPAM_ENGINE/)
  assert.throws(() => loadConfig({ ...base, CLAMAV_ENABLED: 'perhaps' }), /CLAMAV_ENABLED="perhaps" .* true or false/)
  assert.throws(() => loadConfig({ ...base, RSPAMD_URL: 'rspamd:11333' }), /RSPAMD_URL/)
})
