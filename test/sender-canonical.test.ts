// CONFIG_DIR/sender_canonical (Postfix's sender_canonical_maps) on the running appliance: a LAN
// device in TRUSTED_NETWORKS sending as root@nas.lan leaves as an address of ours, in MAIL FROM
// and in From:; a user's submitted mail leaves under the name the table gives; a stranger on :25
// is never rewritten. Driven by swaks; the remote MX is smtp-sink.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { startAppliance, type Appliance } from './support/appliance.js'
import { startSmtpSink, type SinkMessage, type SmtpSink } from './support/smtp-sink.js'
import { swaks, swaksSubmit, lastReply } from './support/swaks.js'
import { readMbox, waitForCount } from './support/mbox.js'

let app: Appliance
let sink: SmtpSink

before(async () => {
  sink = await startSmtpSink()
  app = await startAppliance({
    services: ['smtp-ingress', 'delivery', 'submission'],
    users: { 'alice@ours.example': 'pw-alice', 'bob@ours.example': 'pw-bob' },
    env: { TRUSTED_NETWORKS: '127.0.0.2', TRANSPORT_MAP: `far.example=[127.0.0.1]:${sink.port}` },
  })
  await fs.writeFile(
    path.join(app.configDir, 'sender_canonical'),
    [
      'root@nas.lan        alerts@ours.example',
      '@printer.lan        scanner@ours.example',
      '@old.example        @ours.example',
      'alice@ours.example  a.martin@ours.example',
      'root@nas.lan',
    ].join('\n'),
  )
})

after(async () => {
  await app?.stop()
  await sink?.close()
})

const fromLan = (client: string, sender: string, from: string, to: string, subject: string) =>
  swaks([
    '--server',
    `127.0.0.1:${app.port('smtp-ingress', 'smtp')}`,
    '--local-interface',
    client,
    '--from',
    sender,
    '--to',
    to,
    '--header',
    `From: ${from}`,
    '--header',
    `Subject: ${subject}`,
    '--timeout',
    '15',
  ])
const atSink = async (subject: string): Promise<SinkMessage> =>
  (await waitForCount(async () => (await sink.received()).filter((m) => m.message.includes(`\nSubject: ${subject}\n`)), 1, 20_000))[0]

test('a TRUSTED_NETWORKS device leaves under its canonical address, in MAIL FROM and in From:; an @domain line maps a whole domain', async () => {
  const nas = await fromLan('127.0.0.2', 'root@nas.lan', '"NAS (root@nas.lan)" <root@nas.lan>', 'ops@far.example', 'disk full')
  assert.match(lastReply(nas, '.') ?? '', /^250 /, nas.stdout)
  const m = await atSink('disk full')
  assert.equal(m.mailArgs.split(' ')[0], '<alerts@ours.example>')
  // The address is rewritten; the display name, even one quoting the old address, is not.
  assert.match(m.message, /^From: "NAS \(root@nas\.lan\)" <alerts@ours\.example>$/m)

  const printer = await fromLan('127.0.0.2', 'scan7@printer.lan', 'scan7@printer.lan', 'ops@far.example', 'scan')
  assert.match(lastReply(printer, '.') ?? '', /^250 /, printer.stdout)
  const scanned = await atSink('scan')
  assert.equal(scanned.mailArgs.split(' ')[0], '<scanner@ours.example>')
  assert.match(scanned.message, /^From: scanner@ours\.example$/m)

  const old = await fromLan('127.0.0.2', 'jo@old.example', 'Jo <jo@old.example>', 'ops@far.example', 'old name')
  assert.match(lastReply(old, '.') ?? '', /^250 /, old.stdout)
  assert.equal((await atSink('old name')).mailArgs.split(' ')[0], '<jo@ours.example>')
  assert.match(app.output(), /sender_canonical line ignored .*line=5/)
})

test("submission: the user's own sender is checked, then leaves under the name the table gives", async () => {
  const r = await swaksSubmit(app.port('submission', 'submission'), 'alice@ours.example', 'pw-alice', [
    '--from',
    'alice@ours.example',
    '--to',
    'friend@far.example',
    '--header',
    'Subject: from alice',
    '--timeout',
    '15',
  ])
  assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
  const m = await atSink('from alice')
  assert.equal(m.mailArgs.split(' ')[0], '<a.martin@ours.example>')
  assert.match(m.message, /^From: a\.martin@ours\.example$/m)
})

test('a stranger on :25 is not rewritten: its MAIL FROM:<root@nas.lan> stays what it is', async () => {
  const r = await fromLan('127.0.0.9', 'root@nas.lan', 'root@nas.lan', 'bob@ours.example', 'from outside')
  assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
  const [m] = await waitForCount(
    async () => (await readMbox(path.join(app.mailDir, 'bob'))).filter((x) => x.includes('\nSubject: from outside\n')),
    1,
    20_000,
  )
  assert.match(m, /^Return-Path: <root@nas\.lan>$/m)
  assert.match(m, /^From: root@nas\.lan$/m)
})
