// The greylist's rules (RFC 6647) on a clock the test turns, and its state saved to a real file.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { createLogger } from '@facteur/logging'
import { loadConfig } from '@facteur/config'
import { exemptFrom, Greylist, PASSED_FOR_MS, RETRY_WINDOW_MS, WHITELIST_AFTER } from '../src/policy/greylist.js'

const MIN = 60_000

async function greylist(t: { after(fn: () => Promise<void>): void }, shared = (ip: string) => ip === '172.17.0.1') {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-greylist-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  let logs = ''
  const stream = new PassThrough().on('data', (c: Buffer) => (logs += c.toString()))
  const logger = createLogger({ service: 'smtp-ingress', format: 'json', stream })
  const file = path.join(dir, 'greylist.json')
  const make = () => new Greylist({ delayMs: 5 * MIN, file, logger, shared })
  const g = await make().open()
  t.after(() => g.close())
  return { g, file, make, logs: () => logs }
}

const reply = (e: { reply: string } | null): string => e?.reply ?? 'pass'

test('defers a first attempt with 451 4.7.1, and passes the same triplet retried after the delay', async (t) => {
  const { g } = await greylist(t)
  const at = 1_000_000
  assert.equal(reply(g.check('192.0.2.10', 'a@remote.example', 'bob@ours.example', at)), '451 4.7.1 Greylisted, try again in 300 seconds')
  // Too early: still deferred, the wait counted from the first attempt (not started again).
  assert.equal(
    reply(g.check('192.0.2.10', 'a@remote.example', 'bob@ours.example', at + 4 * MIN)),
    '451 4.7.1 Greylisted, try again in 60 seconds',
  )
  // Another server of the same /24 retries: the sender's pool counts as one (RFC 6647 §4.1).
  assert.equal(reply(g.check('192.0.2.77', 'A@Remote.Example', 'Bob@ours.example', at + 5 * MIN)), 'pass')
  assert.equal(reply(g.check('192.0.2.10', 'a@remote.example', 'bob@ours.example', at + 30 * 24 * 60 * MIN)), 'pass', 'a month later')
  // Another recipient, or another network: a triplet of its own.
  assert.match(reply(g.check('192.0.2.10', 'a@remote.example', 'carol@ours.example', at + 6 * MIN)), /^451 /)
  assert.match(reply(g.check('198.51.100.1', 'a@remote.example', 'bob@ours.example', at + 6 * MIN)), /^451 /)
})

test('forgets a triplet not retried within two days, and a passed one unused for 35 days', async (t) => {
  const { g } = await greylist(t)
  const at = 1_000_000
  g.check('192.0.2.10', 'a@remote.example', 'bob@ours.example', at)
  assert.match(reply(g.check('192.0.2.10', 'a@remote.example', 'bob@ours.example', at + RETRY_WINDOW_MS + 1)), /^451 .* 300 seconds$/)
  assert.equal(reply(g.check('192.0.2.10', 'a@remote.example', 'bob@ours.example', at + RETRY_WINDOW_MS + 6 * MIN)), 'pass')
  const later = at + RETRY_WINDOW_MS + 6 * MIN + PASSED_FOR_MS
  assert.match(reply(g.check('192.0.2.10', 'a@remote.example', 'bob@ours.example', later)), /^451 /)
})

test('counts VERP and sub-addressed senders of one list as one sender, and whitelists a network that passed 5 triplets', async (t) => {
  const { g } = await greylist(t)
  let at = 1_000_000
  g.check('2001:db8:1:2::25', 'list-bounces+bob=ours.example-1234@lists.example', 'bob@ours.example', at)
  at += 5 * MIN
  assert.equal(reply(g.check('2001:db8:1:2::26', 'list-bounces+bob=ours.example-9876@lists.example', 'bob@ours.example', at)), 'pass')
  for (let i = 1; i < WHITELIST_AFTER; i++) {
    // Distinct senders (digits would make them one: s1 and s2 are both s#).
    const sender = `${'abcdefgh'[i]}@lists.example`
    g.check('2001:db8:1:2::25', sender, 'bob@ours.example', at)
    assert.equal(reply(g.check('2001:db8:1:2::25', sender, 'bob@ours.example', at + 5 * MIN)), 'pass')
  }
  // Five triplets passed from that /64: anything from it passes now, from the first attempt.
  assert.equal(reply(g.check('2001:db8:1:2::99', 'new@elsewhere.example', 'carol@ours.example', at + 6 * MIN)), 'pass')
})

test('never whitelists an address that stands for many clients (the Docker gateway) as a whole', async (t) => {
  const { g } = await greylist(t)
  let at = 1_000_000
  for (let i = 0; i < WHITELIST_AFTER + 1; i++) {
    g.check('172.17.0.1', `s${i}@x${i}.example`, 'bob@ours.example', at)
    at += 5 * MIN
    assert.equal(reply(g.check('172.17.0.1', `s${i}@x${i}.example`, 'bob@ours.example', at)), 'pass')
  }
  assert.match(reply(g.check('172.17.0.1', 'spammer@fresh.example', 'bob@ours.example', at)), /^451 /)
})

test('keeps its state across a restart in SPOOL_DIR/greylist.json, and starts empty from a damaged file', async (t) => {
  const { g, file, make, logs } = await greylist(t)
  const now = Date.now()
  g.check('192.0.2.10', 'a@remote.example', 'bob@ours.example', now - 10 * MIN)
  await g.close()
  const again = await make().open()
  assert.equal(reply(again.check('192.0.2.10', 'a@remote.example', 'bob@ours.example', now)), 'pass', 'the first attempt was remembered')
  await again.close()

  await fs.writeFile(file, '{"version":1,"triplets":[["x", {"fir')
  const fresh = await make().open()
  assert.match(reply(fresh.check('192.0.2.10', 'a@remote.example', 'bob@ours.example', now)), /^451 /)
  await fresh.close()
  assert.match(logs(), /"message":"greylist state not read: starting empty"/)
  // The damaged file was replaced whole by the last save.
  assert.equal(JSON.parse(await fs.readFile(file, 'utf8')).version, 1)
})

test('GREYLIST_EXEMPT: its client networks and sender domains (and their subdomains) are never greylisted', () => {
  const { greylistExempt } = loadConfig({ MAIL_DOMAIN: 'ours.example', GREYLIST_EXEMPT: '203.0.113.0/24, 2001:db8::/32, partner.example' })
  const exempt = exemptFrom(greylistExempt)
  assert.deepEqual(
    [
      exempt('203.0.113.9', 'a@x.example'),
      exempt('2001:db8::1', 'a@x.example'),
      exempt('192.0.2.10', 'a@partner.example'),
      exempt('192.0.2.10', 'a@mail.Partner.example'),
      exempt('192.0.2.10', 'a@notpartner.example'),
      exempt('192.0.2.10', ''),
    ],
    [true, true, true, true, false, false],
  )
  assert.throws(
    () => loadConfig({ MAIL_DOMAIN: 'ours.example', GREYLIST_EXEMPT: '10.0.0.0/33' }),
    /^ConfigError: GREYLIST_EXEMPT="10.0.0.0\/33"/,
  )
  assert.throws(() => loadConfig({ MAIL_DOMAIN: 'ours.example', GREYLIST_EXEMPT: 'not a_domain!' }), /^ConfigError: GREYLIST_EXEMPT=/)
})
