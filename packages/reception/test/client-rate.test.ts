// Connections a minute per client (SMTP_CONNECTION_RATE_LIMIT), as anvil's rate counts them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConnectionRate } from '@facteur/reception'

test('past N connections in a minute a client gets 421 4.7.0 (refused ones count), until its minute is over', () => {
  const rate = new ConnectionRate(2, { hostname: 'mx.ours.example', exempt: (ip) => ip === '192.0.2.9' })
  const t0 = 1_000_000
  assert.equal(rate.admit('192.0.2.1', t0), null)
  assert.equal(rate.admit('192.0.2.1', t0 + 1000), null)
  assert.equal(
    rate.admit('192.0.2.1', t0 + 2000)?.reply,
    '421 4.7.0 mx.ours.example Error: too many connections from 192.0.2.1, try again later',
  )
  assert.equal(rate.admit('192.0.2.2', t0 + 2000), null, 'another client has its own count')
  assert.ok(rate.admit('192.0.2.1', t0 + 59_999), 'still in the minute')
  assert.equal(rate.admit('192.0.2.1', t0 + 60_000), null, 'a new minute')
  for (let i = 0; i < 10; i++) assert.equal(rate.admit('192.0.2.9', t0), null, 'exempt')
})

test('an IPv6 client is counted by its /64; 0 is no limit', () => {
  const rate = new ConnectionRate(1, { hostname: 'mx', exempt: () => false })
  assert.equal(rate.admit('2001:db8:1:2::1', 0), null)
  assert.ok(rate.admit('2001:db8:1:2::ffff', 1), 'same /64')
  assert.equal(rate.admit('2001:db8:1:3::1', 1), null)
  const off = new ConnectionRate(0, { hostname: 'mx', exempt: () => false })
  for (let i = 0; i < 100; i++) assert.equal(off.admit('192.0.2.1', 0), null)
})
