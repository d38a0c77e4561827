import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig, ConfigError } from '@facteur/config'

const base = { MAIL_DOMAIN: 'ours.example' }

test('submission listens on 587 and 465, the alternate port is off, the limits have their defaults', () => {
  const s = loadConfig(base).submission
  assert.deepEqual(
    { listen: s.listen, port: s.port, securePort: s.securePort, alt: s.alt, healthPort: s.healthPort },
    { listen: '0.0.0.0', port: 587, securePort: 465, alt: null, healthPort: 8587 },
  )
  assert.deepEqual(s.auth, { banFailures: 10, banWindowMs: 600_000, banTimeMs: 1_800_000, delayMs: 500, delayMaxMs: 8000 })
  assert.deepEqual(s.limits, { messagesPerHour: 100, maxRecipients: 50 })
  assert.ok(Object.isFrozen(s) && Object.isFrozen(s.auth) && Object.isFrozen(s.limits))
})

test('the alternate port takes implicit TLS unless told starttls; the listen address follows SMTP_LISTEN', () => {
  assert.deepEqual(loadConfig({ ...base, SUBMISSION_ALT_PORT: '2525' }).submission.alt, { port: 2525, tls: 'implicit' })
  assert.deepEqual(loadConfig({ ...base, SUBMISSION_ALT_PORT: '0', SUBMISSION_ALT_TLS: 'STARTTLS' }).submission.alt, {
    port: 0,
    tls: 'starttls',
  })
  assert.equal(loadConfig({ ...base, SMTP_LISTEN: '127.0.0.1' }).submission.listen, '127.0.0.1')
  assert.equal(loadConfig({ ...base, SMTP_LISTEN: '127.0.0.1', SUBMISSION_LISTEN: '::' }).submission.listen, '::')
})

test('bad submission settings stop start-up, naming the variable', () => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ SUBMISSION_PORT: '587x' }, /^SUBMISSION_PORT="587x" is not valid/],
    [{ SUBMISSIONS_PORT: '587' }, /^SUBMISSIONS_PORT="587" is not valid: expected a port other than SUBMISSION_PORT's/],
    [{ SUBMISSION_ALT_PORT: '465' }, /^SUBMISSION_ALT_PORT="465" .* other than SUBMISSIONS_PORT's/],
    [{ SUBMISSION_ALT_TLS: 'maybe', SUBMISSION_ALT_PORT: '2525' }, /^SUBMISSION_ALT_TLS="maybe" .* one of implicit, starttls/],
    [{ SUBMISSION_AUTH_BAN_FAILURES: '0' }, /^SUBMISSION_AUTH_BAN_FAILURES="0" .* from 1 to 10000/],
    [{ SUBMISSION_AUTH_BAN_WINDOW: 'ten minutes' }, /^SUBMISSION_AUTH_BAN_WINDOW=.* a duration/],
    [{ SUBMISSION_AUTH_BAN_TIME: '0' }, /^SUBMISSION_AUTH_BAN_TIME="0" .* longer than 0/],
    [
      { SUBMISSION_AUTH_DELAY: '2s', SUBMISSION_AUTH_DELAY_MAX: '1s' },
      /^SUBMISSION_AUTH_DELAY_MAX="1s" .* no shorter than SUBMISSION_AUTH_DELAY/,
    ],
    [{ SUBMISSION_AUTH_DELAY_MAX: '5m' }, /^SUBMISSION_AUTH_DELAY_MAX="5m" .* at most 60s/],
    [{ SUBMISSION_RATE_MESSAGES: '-1' }, /^SUBMISSION_RATE_MESSAGES="-1"/],
    [{ SUBMISSION_MAX_RECIPIENTS: '0' }, /^SUBMISSION_MAX_RECIPIENTS="0"/],
  ]
  for (const [env, message] of bad)
    assert.throws(
      () => loadConfig({ ...base, ...env }),
      (err: unknown) => err instanceof ConfigError && message.test(err.message),
      JSON.stringify(env),
    )
})
