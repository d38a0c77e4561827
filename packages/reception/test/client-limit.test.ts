// Sessions per client address (SMTP_MAX_CLIENTS_PER_IP), counted as onConnect and onClose see them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ClientLimit, clientKey } from '@facteur/reception'

const session = (id: string, remoteAddress: string) => ({ id, remoteAddress })

test('past the limit one address is refused with 421 4.7.0; others are not; a closed session frees its place once', () => {
  const limit = new ClientLimit(2, { hostname: 'mx.ours.example' })
  assert.equal(limit.admit(session('a', '192.0.2.1')), null)
  assert.equal(limit.admit(session('b', '192.0.2.1')), null)
  assert.equal(
    limit.admit(session('c', '192.0.2.1'))?.reply,
    '421 4.7.0 mx.ours.example Too many connections from your address, try again later',
  )
  assert.equal(limit.admit(session('d', '192.0.2.2')), null, 'another address')
  limit.release(session('c', '192.0.2.1')) // refused: never counted
  assert.equal(limit.connections('192.0.2.1'), 2)
  limit.release(session('a', '192.0.2.1'))
  limit.release(session('a', '192.0.2.1'))
  assert.equal(limit.connections('192.0.2.1'), 1, 'released once')
  assert.equal(limit.admit(session('e', '192.0.2.1')), null)
  for (const id of ['b', 'd', 'e']) limit.release(session(id, ''))
  assert.equal(limit.connections('192.0.2.1') + limit.connections('192.0.2.2'), 0)
})

test('an IPv6 /64 is one client; exempt addresses and a limit of 0 count nothing', () => {
  const limit = new ClientLimit(1, { hostname: 'mx.ours.example', exempt: (ip) => ip === '192.0.2.9' })
  assert.equal(limit.admit(session('a', '2001:db8:1:2::1')), null)
  assert.ok(limit.admit(session('b', '2001:db8:1:2:ffff::2')), 'same /64')
  assert.equal(limit.admit(session('c', '2001:db8:1:3::1')), null, 'another /64')
  for (const id of ['d', 'e', 'f']) assert.equal(limit.admit(session(id, '192.0.2.9')), null)
  assert.equal(limit.connections('192.0.2.9'), 0)
  const none = new ClientLimit(0, { hostname: 'mx.ours.example' })
  for (const id of ['g', 'h', 'i']) assert.equal(none.admit(session(id, '192.0.2.1')), null)
})

test('IPv4-mapped addresses count as IPv4, IPv6 addresses by their /64', () => {
  assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7')
  assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64')
  assert.equal(clientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64')
  assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64')
  assert.equal(clientKey('::1'), '0:0:0:0::/64')
  assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64')
})
