// The MX's client policies that Postfix administrators bring, on the running appliance: the
// access tables (CONFIG_DIR/client_access, sender_access, recipient_access) refusing real clients
// with Postfix's replies, OK waiving greylisting, UNKNOWN_SENDER_DOMAIN (against a real DNS server)
// and SMTP_HELO_CHECK but never opening a relay, a table edited while the MX runs; and
// SMTP_CONNECTION_RATE_LIMIT.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { startAppliance, type Appliance } from './support/appliance.js'
import { startDns, type Dns } from './support/dnsmasq.js'
import { swaks, swaksMail, lastReply } from './support/swaks.js'
import { readMbox, waitForCount } from './support/mbox.js'
import { smtpSession } from './support/smtp-session.js'

let mx: Appliance
let dns: Dns
before(async () => {
  // remote.example has an address; nowhere.example has nothing (UNKNOWN_SENDER_DOMAIN=reject: 550).
  dns = await startDns({ a: [{ name: 'remote.example', ip: '192.0.2.1' }] })
  mx = await startAppliance({
    services: ['smtp-ingress', 'delivery', 'submission'],
    users: {
      'bob@ours.example': 'pw-bob',
      'gone@ours.example': 'pw-gone',
      'alice@ours.example': 'pw-alice',
      'noreply@ours.example': 'pw-nr',
    },
    env: {
      GREYLIST_DELAY: '5m',
      UNKNOWN_SENDER_DOMAIN: 'reject',
      DNS_SERVERS: dns.server,
      SMTP_CONNECTION_RATE_LIMIT: '10',
      TRUSTED_NETWORKS: '127.0.0.62',
    },
  })
  await fs.writeFile(path.join(mx.configDir, 'client_access'), '127.0.0.50 REJECT\n127.0.0.51 OK\n')
  await fs.writeFile(
    path.join(mx.configDir, 'sender_access'),
    [
      '# partners retry from ever-changing servers',
      'partner.nowhere.example OK',
      'slow.remote.example DEFER try later',
      '# an account that only receives (docker-mailserver: setup email restrict add send)',
      'noreply@ours.example REJECT This account does not send mail',
      '',
    ].join('\n'),
  )
  await fs.writeFile(path.join(mx.configDir, 'recipient_access'), 'gone@ours.example 550 5.1.6 Moved to gone@elsewhere.example\n')
})
after(async () => {
  await mx?.stop()
  await dns?.close()
})

const send = (from: string, sender: string, to = 'bob@ours.example', subject = 'access') =>
  swaksMail(mx.port('smtp-ingress', 'smtp'), { client: from, sender, to, subject })
const bob = (): Promise<string[]> => readMbox(path.join(mx.mailDir, 'bob'))

test('refuses what the tables refuse, with Postfix replies at RCPT', async () => {
  const client = await send('127.0.0.50', 'alice@remote.example')
  assert.equal(lastReply(client, 'RCPT'), '554 5.7.1 <unknown[127.0.0.50]>: Client host rejected: Access denied')
  const sender = await send('127.0.0.52', 'news@slow.remote.example')
  assert.equal(lastReply(sender, 'RCPT'), '450 4.7.1 <news@slow.remote.example>: Sender address rejected: try later')
  const rcpt = await send('127.0.0.52', 'alice@remote.example', 'gone@ours.example')
  assert.equal(lastReply(rcpt, 'RCPT'), '550 5.1.6 <gone@ours.example>: Recipient address rejected: Moved to gone@elsewhere.example')
})

test('submission: the sender table refuses an account that may not send, at MAIL; the recipient table one that may not receive, at RCPT', async () => {
  const submit = (user: string, password: string, to: string) =>
    swaks([
      '--server',
      `127.0.0.1:${mx.port('submission', 'submission')}`,
      '--tls',
      '--auth-user',
      user,
      '--auth-password',
      password,
      '--from',
      user,
      '--to',
      to,
      '--timeout',
      '15',
    ])
  const noreply = await submit('noreply@ours.example', 'pw-nr', 'bob@ours.example')
  assert.equal(lastReply(noreply, 'MAIL'), '554 5.7.1 <noreply@ours.example>: Sender address rejected: This account does not send mail')
  const toGone = await submit('alice@ours.example', 'pw-alice', 'gone@ours.example')
  assert.equal(lastReply(toGone, 'RCPT'), '550 5.1.6 <gone@ours.example>: Recipient address rejected: Moved to gone@elsewhere.example')
  const fine = await submit('alice@ours.example', 'pw-alice', 'bob@ours.example')
  assert.match(lastReply(fine, '.') ?? '', /^250 /, fine.stdout)
})

test('OK waives greylisting and the sender domain check, never the relay rules', async () => {
  // Without an OK: a domain with no record is refused, a known one greylisted.
  const unknown = await send('127.0.0.52', 'alice@nowhere.example')
  assert.match(lastReply(unknown, 'MAIL') ?? '', /^550 5\.1\.8 /, unknown.stdout)
  const greylisted = await send('127.0.0.52', 'alice@remote.example')
  assert.match(lastReply(greylisted, 'RCPT') ?? '', /^451 4\.7\.1 Greylisted/, greylisted.stdout)

  const partner = await send('127.0.0.52', 'news@partner.nowhere.example', 'bob@ours.example', 'from a partner')
  assert.match(lastReply(partner, '.') ?? '', /^250 /, partner.stdout)
  const trustedClient = await send('127.0.0.51', 'alice@remote.example', 'bob@ours.example', 'from a trusted client')
  assert.match(lastReply(trustedClient, '.') ?? '', /^250 /, trustedClient.stdout)
  const got = await waitForCount(bob, 2)
  assert.ok(got.some((m) => m.includes('Subject: from a partner')))

  const relay = await send('127.0.0.51', 'alice@remote.example', 'someone@elsewhere.example')
  assert.equal(lastReply(relay, 'RCPT'), '554 5.7.1 Relay access denied')
})

test('SMTP_HELO_CHECK refuses an invalid HELO name at RCPT (Postfix reply), except for a client the tables OK', async () => {
  const port = mx.port('smtp-ingress', 'smtp')
  const helo = (from: string, name: string) =>
    swaks([
      '--server',
      `127.0.0.1:${port}`,
      '--local-interface',
      from,
      '--ehlo',
      name,
      '--from',
      'alice@remote.example',
      '--to',
      'bob@ours.example',
      '--timeout',
      '15',
    ])
  const bad = await helo('127.0.0.52', 'bad..name')
  assert.equal(lastReply(bad, 'RCPT'), '501 5.5.2 <bad..name>: Helo command rejected: Invalid name')
  const ok = await helo('127.0.0.51', 'bad..name')
  assert.match(lastReply(ok, '.') ?? '', /^250 /, ok.stdout)
})

test('a table edited while the MX runs applies to the next message, and a line it cannot use is logged', async () => {
  const tmp = path.join(mx.configDir, 'client_access.new')
  await fs.writeFile(tmp, '127.0.0.53 521 5.7.1 Go away\n127.0.0.54 HOLD\n')
  await fs.rename(tmp, path.join(mx.configDir, 'client_access'))
  const out = await send('127.0.0.53', 'alice@remote.example')
  assert.equal(lastReply(out, 'RCPT'), '521 5.7.1 <unknown[127.0.0.53]>: Client host rejected: Go away')
  const before = await send('127.0.0.50', 'alice@remote.example')
  assert.match(lastReply(before, 'RCPT') ?? '', /^451 4\.7\.1 Greylisted/, 'the old REJECT line is gone')
  await mx.waitForLog(/access table line ignored .*client_access line=2 .*HOLD.* is not an action/)
})

test('SMTP_CONNECTION_RATE_LIMIT: the connection past the limit in a minute gets 421 4.7.0; other and trusted clients do not', async () => {
  const port = mx.port('smtp-ingress', 'smtp')
  const greet = async (from: string): Promise<string> => {
    const s = await smtpSession(port, { localAddress: from })
    try {
      return s.greeting
    } finally {
      await s.close()
    }
  }
  for (let i = 0; i < 10; i++) assert.match(await greet('127.0.0.61'), /^220 /)
  assert.equal(await greet('127.0.0.61'), '421 4.7.0 mx.ours.example Error: too many connections from 127.0.0.61, try again later')
  assert.match(await greet('127.0.0.63'), /^220 /)
  for (let i = 0; i < 12; i++) assert.match(await greet('127.0.0.62'), /^220 /, 'TRUSTED_NETWORKS are not counted')
})
