// OUTBOUND_MODE=relay through a real smarthost: Postfix with STARTTLS and SMTP AUTH (checked by
// Dovecot's auth service), relaying to smtp-sink. The relay's certificate is verified against
// RELAY_HOST (trusted through NODE_EXTRA_CA_CERTS); credentials only ever travel inside TLS.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { openSpool } from '@facteur/spool'
import { startAppliance, type Appliance } from './support/appliance.js'
import { startDns, type Dns } from './support/dnsmasq.js'
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.js'
import { startSmarthost, type Smarthost } from './support/smarthost.js'
import { sendMail } from './support/smtp-session.js'
import { waitForCount } from './support/mbox.js'

let dns: Dns
let sink: SmtpSink
let relay: Smarthost
const appliances: Appliance[] = []

before(async () => {
  sink = await startSmtpSink()
  relay = await startSmarthost({ hostname: 'relay.test', user: 'facteur@relay.test', password: 'relay-secret', relayPort: sink.port })
  dns = await startDns({ a: [{ name: 'relay.test', ip: '127.0.0.1' }] })
})

after(async () => {
  for (const a of appliances) await a.stop()
  await relay?.close()
  await sink?.close()
  await dns?.close()
})

async function applianceWith(password: string): Promise<Appliance> {
  const a = await startAppliance({
    env: {
      OUTBOUND_MODE: 'relay',
      RELAY_HOST: 'relay.test',
      RELAY_PORT: String(relay.port),
      RELAY_USER: 'facteur@relay.test',
      RELAY_PASSWORD: password,
      RELAY_TLS: 'starttls',
      NODE_EXTRA_CA_CERTS: relay.caFile,
      DNS_SERVERS: dns.server,
      TRUSTED_NETWORKS: '127.0.0.1',
      QUEUE_RETRY_MIN: '1s',
    },
  })
  appliances.push(a)
  return a
}

async function send(a: Appliance, to: string): Promise<void> {
  const r = await sendMail(a.port('smtp-ingress', 'smtp'), {
    from: 'alice@ours.example',
    to: [to],
    data: `From: <alice@ours.example>\nTo: <${to}>\nSubject: via the relay\n\nHi.\n`,
  })
  assert.match(r.message ?? r.error ?? '', /^250 /, JSON.stringify(r))
}

test('relay mode delivers through the smarthost with AUTH over STARTTLS, verifying its certificate', async () => {
  const a = await applianceWith('relay-secret')
  await send(a, 'friend@far.example')
  const [m] = await waitForCount(
    async () => (await sink.received()).filter((x) => x.rcptArgs.some((r) => r.includes('<friend@far.example>'))),
    1,
    20_000,
  )
  // Postfix's own Received: field says how our message reached it: ESMTPSA is TLS plus AUTH (RFC 3848).
  assert.match(m.message, /by relay\.test \(Postfix\) with ESMTPSA id/)
  assert.match(m.message, /\(Authenticated sender: facteur@relay\.test\)/)
  assert.match(m.message, /from mx\.ours\.example \(/)
  assert.match(m.message, /^Subject: via the relay$/m)
})

test('credentials the smarthost refuses leave the message queued, retried, with the reply logged', async () => {
  const a = await applianceWith('wrong-password')
  await send(a, 'other@far.example')
  const spool = await openSpool(a.spoolDir)
  const deadline = Date.now() + 20_000
  let last = ''
  for (;;) {
    const e = (await spool.list()).find((x) => x.envelope.recipients[0].address === 'other@far.example')
    last = e?.envelope.recipients[0].lastError ?? ''
    if (e?.envelope.recipients[0].status === 'deferred') break
    assert.ok(Date.now() < deadline, `no deferral: ${last}\n${a.output().slice(-2000)}`)
    await new Promise((r) => setTimeout(r, 200))
  }
  assert.match(last, /^454 4\.7\.0 relay\.test\[127\.0\.0\.1\]:\d+ refused our credentials: 535 /)
  assert.equal((await sink.received()).filter((x) => x.rcptArgs.some((r) => r.includes('<other@far.example>'))).length, 0)
})
