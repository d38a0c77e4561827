// DKIM at send time, checked by an independent verifier: Debian's python3-dkim (dkimpy, the
// library behind dkimverify, test/support/dkimpy.ts) verifies what the remote MX received against
// the public key that dnsmasq serves.
// Keys come from `mailctl dkim keygen` (RSA for one domain, Ed25519 for the other).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { startAppliance, ROOT, type Appliance } from './support/appliance.js'
import { startDns, type Dns } from './support/dnsmasq.js'
import { startScriptedMx, type ScriptedMx, type MxMessage } from './support/scripted-mx.js'
import { startForwarder, type Forwarder } from './support/forwarder.js'
import { freePort } from './support/ports.js'
import { sendMail } from './support/smtp-session.js'
import { waitForCount } from './support/mbox.js'
import { runOk, tempDir, removeDir } from './support/process.js'
import { verifyDkim } from './support/dkimpy.js'

let a: Appliance
let dns: Dns
let mx: ScriptedMx
let fwd: Forwarder
let configDir: string
const records: Record<string, string> = {}

const mailctl = (env: Record<string, string>, ...args: string[]) =>
  runOk(process.execPath, ['--import', 'tsx', '--conditions=source', path.join(ROOT, 'packages/mailctl/src/main.ts'), ...args], {
    env,
    cwd: ROOT,
  })

before(async () => {
  configDir = await tempDir('dkim-config')
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    ENV_FILE: '/dev/null',
    MAIL_DOMAIN: 'ours.example',
    LOCAL_DOMAINS: 'ours.example,second.example',
    CONFIG_DIR: configDir,
    SPOOL_DIR: path.join(configDir, 'spool'),
    MAIL_DIR: path.join(configDir, 'mail'),
  }
  for (const [domain, flags] of [
    ['ours.example', []],
    ['second.example', ['--ed25519']],
  ] as const) {
    const out = (await mailctl(env, 'dkim', 'keygen', domain, ...flags)).stdout
    const m = /^facteur\._domainkey\.\S+ IN TXT (.*)$/m.exec(out)
    assert.ok(m, out)
    records[domain] = [...m[1].matchAll(/"([^"]*)"/g)].map((x) => x[1]).join('')
  }
  await fs.writeFile(path.join(configDir, 'users'), 'alice@ours.example:{PLAIN}pw\nsam@second.example:{PLAIN}pw\n')

  mx = await startScriptedMx({ rcpt: { 'gone@remote.example': '550 5.1.1 No such user' } })
  const port = await freePort('127.0.0.2')
  fwd = await startForwarder('127.0.0.2', port, mx.port)
  dns = await startDns({
    mx: [{ domain: 'remote.example', host: 'mx.remote.example' }],
    a: [{ name: 'mx.remote.example', ip: '127.0.0.2' }],
    txt: Object.entries(records).map(([domain, text]) => ({ name: `facteur._domainkey.${domain}`, text })),
  })
  a = await startAppliance({
    env: {
      CONFIG_DIR: configDir,
      LOCAL_DOMAINS: 'ours.example,second.example',
      DNS_SERVERS: dns.server,
      OUTBOUND_PORT: String(port),
      TRUSTED_NETWORKS: '127.0.0.1',
    },
  })
})

after(async () => {
  await a?.stop()
  await fwd?.close()
  await mx?.close()
  await dns?.close()
  if (configDir) await removeDir(configDir)
})

const verify = (m: MxMessage): Promise<string> => verifyDkim(m.data, dns.port)

async function send(from: string, to: string[], subject: string): Promise<void> {
  const r = await sendMail(a.port('smtp-ingress', 'smtp'), {
    from,
    to,
    data: `From: Someone <${from}>\nTo: <${to[0]}>\nSubject: ${subject}\nMessage-ID: <${Date.now()}@x>\n\nA line.\n`,
  })
  assert.match(r.message ?? r.error ?? '', /^250 /, JSON.stringify(r))
}

const arrived = (rcpt: string) => waitForCount(async () => mx.messages.filter((m) => m.to.includes(rcpt)), 1)

test('a message from one of our domains leaves DKIM-signed (RSA), and python3-dkim verifies it against the key in DNS', async () => {
  await send('alice@ours.example', ['bob@remote.example'], 'signed rsa')
  const [m] = await arrived('bob@remote.example')
  const text = m.data.toString('latin1')
  assert.match(text, /^DKIM-Signature: [^]*?d=ours\.example;[^]*?s=facteur;/m)
  assert.equal(await verify(m), 'pass ours.example')
  const tampered = { ...m, data: Buffer.from(text.replace('A line.', 'A line!'), 'latin1') }
  assert.match(await verify(tampered), /^fail/, 'the verifier does check')
})

test('an Ed25519 key (RFC 8463) signs too, and verifies', async () => {
  await send('sam@second.example', ['ed@remote.example'], 'signed ed25519')
  const [m] = await arrived('ed@remote.example')
  assert.match(m.data.toString('latin1'), /a=ed25519-sha256/)
  assert.equal(await verify(m), 'pass second.example')
})

test('a bounce to a remote sender is signed for our domain, and verifies', async () => {
  await send('carol@remote.example', ['gone@remote.example'], 'will bounce')
  const [m] = await arrived('carol@remote.example')
  assert.equal(m.from, '', 'sent from the null sender')
  const text = m.data.toString('latin1')
  assert.match(text, /^From: Mail Delivery System <MAILER-DAEMON@mx\.ours\.example>\r$/m)
  assert.match(text, /^Final-Recipient: rfc822; gone@remote\.example\r$/m)
  assert.equal(await verify(m), 'pass ours.example')
})

test('mail whose From: is not one of our domains is relayed unsigned', async () => {
  await send('dave@remote.example', ['erin@remote.example'], 'not ours')
  const [m] = await arrived('erin@remote.example')
  assert.doesNotMatch(m.data.toString('latin1'), /^DKIM-Signature:/im)
})

test('mailctl dns prints the DKIM record that is published, with MX, SPF, DMARC and PTR', async () => {
  const out = (await mailctl(a.env, 'dns', 'ours.example', '--address=192.0.2.25')).stdout
  assert.match(out, /^ours\.example\. IN MX 10 mx\.ours\.example\.$/m)
  assert.match(out, /^ours\.example\. IN TXT "v=spf1 mx ip4:192\.0\.2\.25 -all"$/m)
  const dkim = /^facteur\._domainkey\.ours\.example\. IN TXT (.*)$/m.exec(out)
  assert.ok(dkim)
  assert.equal(
    [...dkim[1].matchAll(/"([^"]*)"/g)].map((x) => x[1]).join(''),
    (await dns.resolver().resolveTxt('facteur._domainkey.ours.example'))[0].join(''),
  )
  assert.match(out, /^_dmarc\.ours\.example\. IN TXT "v=DMARC1; p=none;/m)
  assert.match(out, /^25\.2\.0\.192\.in-addr\.arpa\. IN PTR mx\.ours\.example\.$/m)
})
