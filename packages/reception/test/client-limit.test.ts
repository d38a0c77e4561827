// Sessions per client address (SMTP_MAX_CLIENTS_PER_IP), counted as onConnect and onClose see them, and
// from the TCP accept on an implicit-TLS listener.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import tls from 'node:tls'
import { once } from 'node:events'
import { SMTPServer } from 'smtp-server'
import { ClientLimit, clientKey } from '@facteur/reception'
import { waitFor } from '../../../test/support/queue.js'

const session = (id: string, remoteAddress: string, remotePort = 0) => ({ id, remoteAddress, remotePort })

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

test('an implicit-TLS listener counts from the accept: handshakes never finished hold places, one more is closed, a session takes its place over', async (t) => {
  const limit = new ClientLimit(2, { hostname: 'mx.ours.example' })
  const refused: string[] = []
  const server = new SMTPServer({
    secure: true,
    logger: false,
    onConnect(session, cb) {
      const refusal = limit.admit(session)
      cb(refusal ? refusal.toServerError() : undefined)
    },
    onClose: (session) => limit.release(session),
  })
  // A connection closed during its handshake is an 'error' of the server (logged by the services).
  server.on('error', () => undefined)
  // Another handler before smtp-server's, as guardListener's: it must not see the refused ones.
  let seen = 0
  server.server.prependListener('connection', () => seen++)
  limit.countFromAccept(server, (ip) => refused.push(ip))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.server.address() as net.AddressInfo
  const sockets: net.Socket[] = []
  const open = (): net.Socket => {
    const s = net.connect({ host: '127.0.0.1', port })
    s.on('error', () => undefined)
    sockets.push(s)
    return s
  }
  t.after(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const counted = (n: number) => waitFor(`${n} counted`, async () => limit.connections('127.0.0.1') === n)
  // Two connections that never begin TLS hold both places.
  const [a, b] = [open(), open()]
  await counted(2)
  const c = open()
  await once(c, 'close')
  assert.deepEqual(refused, ['127.0.0.1'], 'the third is closed at accept')
  assert.equal(seen, 2, 'handlers installed before see only the connections let in')
  a.destroy()
  await counted(1)
  // A real TLS client: counted at accept, its session takes that count over (not a second one).
  const client = tls.connect({ socket: open(), rejectUnauthorized: false })
  const greeting = String((await once(client, 'data'))[0])
  assert.match(greeting, /^220 /)
  assert.equal(limit.connections('127.0.0.1'), 2)
  open()
  await waitFor('the fourth closed', async () => refused.length === 2)
  client.destroy()
  b.destroy()
  await counted(0)
})
