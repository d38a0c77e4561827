// SENDER_RELAY_MAP with relay_passwords (Postfix's sender_dependent_relayhost_maps and
// smtp_sasl_password_maps): mail from one of our domains leaves through a real smarthost (Postfix
// with STARTTLS and SMTP AUTH checked by Dovecot), with that domain's credentials, its certificate
// verified; another domain's mail goes straight to the MX (dnsmasq's answer, smtp-sink); a copy an
// alias forwards leaves with its SRS address of the mapped domain, so through the smarthost too.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { startAppliance, type Appliance } from './support/appliance.js'
import { startDns, type Dns } from './support/dnsmasq.js'
import { startSmtpSink, type SinkMessage, type SmtpSink } from './support/smtp-sink.js'
import { startSmarthost, type Smarthost } from './support/smarthost.js'
import { swaksMail, swaksSubmit, lastReply } from './support/swaks.js'
import { waitForCount } from './support/mbox.js'

let dns: Dns
let direct: SmtpSink
let relayed: SmtpSink
let relay: Smarthost
let app: Appliance

before(async () => {
  direct = await startSmtpSink()
  relayed = await startSmtpSink()
  relay = await startSmarthost({ hostname: 'relay.test', user: 'ours@relay.test', password: 'relay-secret', relayPort: relayed.port })
  dns = await startDns({
    mx: [{ domain: 'far.example', host: 'mx.far.example' }],
    a: [
      { name: 'relay.test', ip: '127.0.0.1' },
      { name: 'mx.far.example', ip: '127.0.0.1' },
    ],
  })
  app = await startAppliance({
    services: ['smtp-ingress', 'delivery', 'submission'],
    users: { 'bob@ours.example': 'pw-bob', 'alice@other.example': 'pw-alice' },
    aliases: 'fwd@ours.example: friend@far.example\n',
    env: {
      LOCAL_DOMAINS: 'ours.example,other.example',
      SENDER_RELAY_MAP: `ours.example=relay.test:${relay.port}`,
      NODE_EXTRA_CA_CERTS: relay.caFile,
      DNS_SERVERS: dns.server,
      OUTBOUND_PORT: String(direct.port),
      QUEUE_RETRY_MIN: '1s',
    },
  })
  // The credentials, keyed by the sender's domain as docker-mailserver's postfix-sasl-password.cf.
  await fs.writeFile(path.join(app.configDir, 'relay_passwords'), '@ours.example ours@relay.test:relay-secret\n')
})

after(async () => {
  await app?.stop()
  await relay?.close()
  await relayed?.close()
  await direct?.close()
  await dns?.close()
})

const arrived = (sink: SmtpSink, rcpt: string) => async (): Promise<SinkMessage[]> =>
  (await sink.received()).filter((m) => m.rcptArgs.some((r) => r.startsWith(`<${rcpt}>`)))

const submit = (user: string, password: string, to: string) =>
  swaksSubmit(app.port('submission', 'submission'), user, password, ['--from', user, '--to', to, '--timeout', '15'])

test("a mapped domain's mail leaves through its relay with its credentials over verified STARTTLS; another domain's goes to the MX", async () => {
  const fromBob = await submit('bob@ours.example', 'pw-bob', 'one@far.example')
  assert.match(lastReply(fromBob, '.') ?? '', /^250 /, fromBob.stdout)
  const fromAlice = await submit('alice@other.example', 'pw-alice', 'two@far.example')
  assert.match(lastReply(fromAlice, '.') ?? '', /^250 /, fromAlice.stdout)

  const [viaRelay] = await waitForCount(arrived(relayed, 'one@far.example'), 1, 20_000)
  // Postfix's Received: field: TLS and AUTH (ESMTPSA, RFC 3848) as the mapped domain's relay user.
  assert.match(viaRelay.message, /by relay\.test \(Postfix\) with ESMTPSA id/)
  assert.match(viaRelay.message, /\(Authenticated sender: ours@relay\.test\)/)
  assert.equal(viaRelay.mailArgs.split(' ')[0], '<bob@ours.example>')

  const [straight] = await waitForCount(arrived(direct, 'two@far.example'), 1, 20_000)
  assert.equal(straight.mailArgs.split(' ')[0], '<alice@other.example>')
  assert.doesNotMatch(straight.message, /relay\.test/)
  assert.deepEqual(await arrived(direct, 'one@far.example')(), [], "the mapped domain's mail did not go to the MX")
})

test("a forwarded copy leaves with its SRS address of the mapped domain, so through that domain's relay", async () => {
  const r = await swaksMail(app.port('smtp-ingress', 'smtp'), { sender: 'someone@sender.test', to: 'fwd@ours.example', subject: 'fwd' })
  assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
  const [m] = await waitForCount(arrived(relayed, 'friend@far.example'), 1, 20_000)
  assert.match(m.mailArgs, /^<SRS0=[^>]+=sender\.test=someone@ours\.example>/)
  assert.match(m.message, /\(Authenticated sender: ours@relay\.test\)/)
})
