// Routing rules, each sending a message to the sink it should reach: TRANSPORT_MAP (a LAN
// domain to an internal host), FALLBACK_RELAY (local names nobody has here), RELAY_DOMAINS (a
// backup MX forwarding to the better MX), and OUTBOUND_MODE=local refusing other domains at RCPT.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { openSpool, type Spool } from '@facteur/spool'
import { startAppliance, type Appliance } from './support/appliance.js'
import { startDns, type Dns } from './support/dnsmasq.js'
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.js'
import { startForwarder, type Forwarder } from './support/forwarder.js'
import { freePort } from './support/ports.js'
import { sendMail, smtpSession } from './support/smtp-session.js'
import { readMbox, waitForCount } from './support/mbox.js'

let a: Appliance
let local: Appliance
let dns: Dns
let spool: Spool
let lan: SmtpSink
let fallback: SmtpSink
let primary: SmtpSink
let fwd: Forwarder

before(async () => {
  lan = await startSmtpSink()
  fallback = await startSmtpSink()
  primary = await startSmtpSink()
  const port = await freePort('127.0.0.2')
  fwd = await startForwarder('127.0.0.2', port, primary.port)
  dns = await startDns({
    mx: [
      { domain: 'backup.example', host: 'mx.backup.example', pref: 10 },
      { domain: 'backup.example', host: 'mx.ours.example', pref: 20 },
    ],
    a: [
      { name: 'mx.backup.example', ip: '127.0.0.2' },
      { name: 'mx.ours.example', ip: '127.0.0.1' },
    ],
  })
  a = await startAppliance({
    users: { 'alice@ours.example': 'pw-alice' },
    env: {
      DNS_SERVERS: dns.server,
      OUTBOUND_PORT: String(port),
      TRANSPORT_MAP: `lan.example=[127.0.0.1]:${lan.port}, .corp.example=127.0.0.1:${lan.port}`,
      FALLBACK_RELAY: `[127.0.0.1]:${fallback.port}`,
      RELAY_DOMAINS: 'backup.example',
      QUEUE_RETRY_MIN: '1s',
    },
  })
  spool = await openSpool(a.spoolDir)
  local = await startAppliance({
    users: { 'alice@ours.example': 'pw-alice' },
    env: {
      OUTBOUND_MODE: 'local',
      TRUSTED_NETWORKS: '127.0.0.1',
      TRANSPORT_MAP: `lan.example=[127.0.0.1]:${lan.port}`,
      QUEUE_RETRY_MIN: '1s',
    },
  })
})

after(async () => {
  await a?.stop()
  await local?.stop()
  await fwd?.close()
  for (const s of [lan, fallback, primary]) await s?.close()
  await dns?.close()
})

const body = (from: string, to: string, subject: string): string => `From: <${from}>\nTo: <${to}>\nSubject: ${subject}\n\nHello.\n`

async function sinkFor(sink: SmtpSink, rcpt: string) {
  return waitForCount(async () => (await sink.received()).filter((m) => m.rcptArgs.some((x) => x.includes(`<${rcpt}>`))), 1)
}

async function rcptReply(port: number, address: string): Promise<string> {
  const s = await smtpSession(port)
  try {
    await s.send('EHLO client.test')
    await s.send('MAIL FROM:<alice@ours.example>')
    return await s.send(`RCPT TO:<${address}>`)
  } finally {
    await s.close()
  }
}

test('TRANSPORT_MAP sends a domain, and the subdomains of a .domain entry, to their host, without any DNS record', async () => {
  const base = {
    sender: 'alice@ours.example',
    receivedAt: Date.now(),
    nextAttempt: 0,
    client: { ip: '127.0.0.1', helo: 'test', tls: false },
    source: 'submission',
  }
  for (const to of ['printer@lan.example', 'desk@hq.corp.example'])
    await spool.enqueue(Buffer.from(body('alice@ours.example', to, 'lan').replace(/\n/g, '\r\n')), {
      ...base,
      recipients: [{ address: to, original: to, status: 'pending', attempts: 0 }],
    })
  const [m] = await sinkFor(lan, 'printer@lan.example')
  assert.equal(m.helo, 'mx.ours.example')
  await sinkFor(lan, 'desk@hq.corp.example')
})

test('FALLBACK_RELAY: the MX accepts a local name nobody has here and forwards it; known users stay local', async () => {
  const port = a.port('smtp-ingress', 'smtp')
  const r = await sendMail(port, {
    from: 'someone@remote.example',
    to: ['nobody@ours.example', 'alice@ours.example'],
    data: body('someone@remote.example', 'nobody@ours.example', 'fallback'),
  })
  assert.deepEqual(r.rcpt, ['250 2.1.5 Accepted', '250 2.1.5 Accepted'])
  assert.match(r.message ?? '', /^250 /)
  const [m] = await sinkFor(fallback, 'nobody@ours.example')
  assert.equal(m.mailArgs.split(' ')[0], '<someone@remote.example>')
  assert.ok(!m.rcptArgs.some((x) => x.includes('alice@')), 'alice is not forwarded')
  await waitForCount(() => readMbox(path.join(a.mailDir, 'alice')), 1)
})

test('RELAY_DOMAINS: accepted on :25 from any client and forwarded to the better MX, never to ourselves', async () => {
  const port = a.port('smtp-ingress', 'smtp')
  assert.match(await rcptReply(port, 'user@other.example'), /^554 5\.7\.1 /, 'other domains are still not relayed')
  const r = await sendMail(port, {
    from: 'someone@remote.example',
    to: ['user@backup.example'],
    data: body('someone@remote.example', 'user@backup.example', 'backup mx'),
  })
  assert.match(r.message ?? '', /^250 /, JSON.stringify(r))
  const [m] = await sinkFor(primary, 'user@backup.example')
  assert.match(m.message, /^Subject: backup mx$/m)
})

test('OUTBOUND_MODE=local refuses other domains at RCPT with 550 5.7.1, even for trusted clients; local users and TRANSPORT_MAP routes are accepted', async () => {
  const port = local.port('smtp-ingress', 'smtp')
  assert.equal(await rcptReply(port, 'user@other.example'), '550 5.7.1 This server does not send mail to other domains')
  assert.match(await rcptReply(port, 'alice@ours.example'), /^250 /)
  assert.match(await rcptReply(port, 'printer@lan.example'), /^250 /)
})
