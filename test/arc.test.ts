// ARC sealing of forwarded copies (RFC 8617), against the running appliance with its filter
// (sender authentication only: no clamd, no spamd). A copy an alias forwards to another host
// leaves with an ARC set for the alias's domain, which dkimpy (python3-dkim, an independent
// verifier: test/support/dkimpy.ts) validates against the key dnsmasq serves; a chain that came
// in valid is extended; a broken one, and the local copy of the same message, are not sealed.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { sealMessage } from 'mailauth/lib/arc/index.js'
import { startAppliance, type Appliance } from './support/appliance.js'
import { startDns, type Dns } from './support/dnsmasq.js'
import { startScriptedMx, type ScriptedMx } from './support/scripted-mx.js'
import { sendMail } from './support/smtp-session.js'
import { waitForCount } from './support/mbox.js'
import { verifyArc } from './support/dkimpy.js'

let app: Appliance
let dns: Dns
let mx: ScriptedMx

const rsa = () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return {
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    record: `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`,
  }
}
const ours = rsa()
// A mailing list that sealed the message before it reached us.
const list = rsa()

before(async () => {
  mx = await startScriptedMx()
  dns = await startDns({
    txt: [
      { name: 'facteur._domainkey.ours.example', text: ours.record },
      { name: 'arc._domainkey.lists.example', text: list.record },
    ],
  })
  app = await startAppliance({
    services: ['filter', 'smtp-ingress', 'delivery'],
    env: {
      CLAMAV_ENABLED: 'false',
      SPAM_ENGINE: 'off',
      DNS_SERVERS: dns.server,
      TRANSPORT_MAP: `far.example=[127.0.0.1]:${mx.port}`,
    },
    users: { 'bob@ours.example': 'pw-bob' },
    aliases: 'fwd@ours.example: friend@far.example\nteam@ours.example: bob@ours.example, mate@far.example\n',
  })
  await fs.mkdir(path.join(app.configDir, 'dkim'), { recursive: true })
  await fs.writeFile(path.join(app.configDir, 'dkim', 'ours.example.facteur.key'), ours.pem, { mode: 0o600 })
})

after(async () => {
  await app?.stop()
  await dns?.close()
  await mx?.close()
})

async function send(from: string, to: string, data: string): Promise<void> {
  const r = await sendMail(app.port('smtp-ingress', 'smtp'), { from, to: [to], data, helo: 'mail.sender.test' })
  assert.match(r.message ?? r.error ?? '', /^250 /, JSON.stringify(r))
}

async function arrived(rcpt: string, subject: string): Promise<string> {
  const [m] = await waitForCount(
    async () => mx.messages.filter((x) => x.to.includes(rcpt) && x.data.includes(`Subject: ${subject}\r\n`)),
    1,
    20_000,
  )
  return m.data.toString('latin1')
}

const fields = (text: string, name: string): string[] =>
  [...text.slice(0, text.indexOf('\r\n\r\n')).matchAll(new RegExp(`^${name}: (.*(?:\\r\\n[ \\t].*)*)`, 'gim'))].map((m) =>
    m[1].replace(/\r\n[ \t]+/g, ' '),
  )

const message = (subject: string, from = 'alice@sender.test') =>
  `From: Alice <${from}>\r\nTo: <fwd@ours.example>\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@sender.test>\r\n\r\nA line.\r\n`

/** The ARC set lists.example would put in front of `original` (RFC 8617 §5.1, the first set). */
const listSeal = async (original: string): Promise<string> =>
  (
    await sealMessage(original, {
      signingDomain: 'lists.example',
      selector: 'arc',
      privateKey: list.pem,
      authResults: 'lists.example; dkim=none (message not signed); spf=pass smtp.mailfrom=alice@sender.test',
      cv: 'none',
    })
  ).toString()

test('a copy an alias forwards leaves with an ARC set of the alias domain, and dkimpy validates it; the local copy is not sealed', async () => {
  await send('alice@sender.test', 'team@ours.example', message('to the team'))
  const text = await arrived('mate@far.example', 'to the team')
  const [seal] = fields(text, 'ARC-Seal')
  assert.match(seal, /\bi=1;/)
  assert.match(seal, /\bcv=none;/)
  assert.match(seal, /\bd=ours\.example;/)
  assert.match(seal, /\bs=facteur;/)
  // The verdict we recorded when the message came in, as our filter wrote it.
  const [aar] = fields(text, 'ARC-Authentication-Results')
  assert.match(aar, /^i=1; mx\.ours\.example; .*spf=none .*smtp\.mailfrom=alice@sender\.test/)
  assert.match(await verifyArc(Buffer.from(text, 'latin1'), dns.port), /^pass 1 /)
  const tampered = Buffer.from(text.replace('A line.', 'A line!'), 'latin1')
  assert.match(await verifyArc(tampered, dns.port), /^fail/, 'the verifier does check')

  const [local] = await waitForCount(
    async () =>
      (await fs.readFile(path.join(app.mailDir, 'bob'), 'utf8').catch(() => ''))
        .split(/^From /m)
        .filter((m) => m.includes('Subject: to the team')),
    1,
    20_000,
  )
  assert.doesNotMatch(local, /^ARC-/im)
  assert.match(local, /^Authentication-Results: mx\.ours\.example;/m)
})

test('a chain that came in valid (a mailing list sealed it) is extended: i=2, cv=pass, and the whole chain validates', async () => {
  const original = message('through the list')
  await send('list-bounces@lists.example', 'fwd@ours.example', (await listSeal(original)) + original)
  const text = await arrived('friend@far.example', 'through the list')
  const seals = fields(text, 'ARC-Seal')
  assert.equal(seals.length, 2)
  assert.match(seals[0], /\bi=2;.*\bcv=pass;/)
  assert.match(fields(text, 'ARC-Authentication-Results')[0], /^i=2; mx\.ours\.example; .*arc=pass/)
  assert.match(await verifyArc(Buffer.from(text, 'latin1'), dns.port), /^pass 2 /)
})

test('a chain that came in broken (changed after the list sealed it) is passed on unsealed', async () => {
  const original = message('changed after the seal')
  await send('list-bounces@lists.example', 'fwd@ours.example', (await listSeal(original)) + original.replace('A line.', 'Another line.'))
  const text = await arrived('friend@far.example', 'changed after the seal')
  assert.match(fields(text, 'Authentication-Results')[0], /arc=fail/)
  const seals = fields(text, 'ARC-Seal')
  assert.equal(seals.length, 1, "only the list's")
  assert.match(seals[0], /\bi=1;.*d=lists\.example/)
})
