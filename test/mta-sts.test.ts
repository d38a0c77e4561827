// MTA-STS (RFC 8461) against real parts: dnsmasq publishes the `_mta-sts` TXT records and the MX
// and A records, an HTTPS server (node:https, its certificate trusted through NODE_EXTRA_CA_CERTS
// as a public CA's would be) serves each domain's policy at mta-sts.DOMAIN, and two scripted MX
// hosts offer STARTTLS: one with a certificate valid for its name, one self-signed. Delivery obeys
// an enforce policy (only its MX names, only with a valid certificate), only logs for testing,
// and delivers as before where no policy is published or none can be fetched. OUTBOUND_TLS_POLICY
// (Postfix's smtp_tls_policy_maps) against the same hosts and a third one without STARTTLS.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import https from 'node:https'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import { generate } from 'selfsigned'
import { openSpool, type Spool } from '@facteur/spool'
import { startAppliance, type Appliance } from './support/appliance.js'
import { startDns, type Dns } from './support/dnsmasq.js'
import { startScriptedMx, type ScriptedMx } from './support/scripted-mx.js'
import { startForwarder, type Forwarder } from './support/forwarder.js'
import { freePort } from './support/ports.js'
import { sendPlain, queuedFor, waitFor } from './support/queue.js'
import { tempDir, removeDir } from './support/process.js'

/** Domain -> the policy its HTTPS server serves (none: 404). */
const POLICIES: Record<string, string | null> = {
  'good.example': 'version: STSv1\r\nmode: enforce\r\nmx: mx.good.example\r\nmax_age: 86400\r\n',
  'badcert.example': 'version: STSv1\nmode: enforce\nmx: *.badcert.example\nmax_age: 86400\n',
  'unlisted.example': 'version: STSv1\nmode: enforce\nmx: mx.elsewhere.example\nmax_age: 86400\n',
  'testing.example': 'version: STSv1\nmode: testing\nmx: mx.elsewhere.example\nmax_age: 86400\n',
  'nopolicy.example': null,
}

/** OUTBOUND_TLS_POLICY's domains (no MTA-STS record): the level, and the host their MX is. */
const TLS_POLICY: Record<string, { level: string; ip: string }> = {
  'pinned.example': { level: 'verify', ip: '127.0.0.2' }, // the certificate valid for its name
  'pinnedbad.example': { level: 'verify', ip: '127.0.0.3' }, // self-signed
  'encrypted.example': { level: 'encrypt', ip: '127.0.0.3' },
  'encryptednotls.example': { level: 'encrypt', ip: '127.0.0.5' }, // no STARTTLS offered
  'cleartext.example': { level: 'none', ip: '127.0.0.3' },
}

let dir: string
let app: Appliance
let dns: Dns
let spool: Spool
let policyServer: https.Server
let goodMx: ScriptedMx
let badMx: ScriptedMx
let plainMx: ScriptedMx
const fwd: Record<string, Forwarder> = {}

/** A self-issued certificate for these names (its own CA, as a test trusts it). */
async function certificate(names: string[]): Promise<{ key: string; cert: string }> {
  const pems = await generate([{ name: 'commonName', value: names[0] }], {
    keySize: 2048,
    extensions: [{ name: 'subjectAltName', altNames: names.map((value) => ({ type: 2, value })) }],
  })
  return { key: pems.private, cert: pems.cert }
}

before(async () => {
  dir = await tempDir('mta-sts')
  const webCert = await certificate(Object.keys(POLICIES).map((d) => `mta-sts.${d}`))
  const mxCert = await certificate(['mx.good.example', 'mx.unlisted.example', 'mx.pinned.example'])
  policyServer = https.createServer(webCert, (req, res) => {
    const domain = (req.headers.host ?? '').replace(/^mta-sts\./, '').replace(/:\d+$/, '')
    const policy = POLICIES[domain]
    if (req.url !== '/.well-known/mta-sts.txt' || !policy) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not here\n')
      return
    }
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(policy)
  })
  await new Promise<void>((resolve) => policyServer.listen(0, '127.0.0.1', resolve))
  const caFile = path.join(dir, 'trusted.pem')
  await fs.writeFile(caFile, `${webCert.cert.trim()}\n${mxCert.cert.trim()}\n`)

  goodMx = await startScriptedMx({ tls: true, certificate: mxCert, hostname: 'mx.good.example' })
  badMx = await startScriptedMx({ tls: true, hostname: 'mx.badcert.example' })
  const port = await freePort('127.0.0.2')
  fwd.good = await startForwarder('127.0.0.2', port, goodMx.port)
  fwd.bad = await startForwarder('127.0.0.3', port, badMx.port)
  fwd.unlisted = await startForwarder('127.0.0.4', port, goodMx.port)
  plainMx = await startScriptedMx({ hostname: 'mx.notls.example' })
  fwd.plain = await startForwarder('127.0.0.5', port, plainMx.port)

  const domains = Object.keys(POLICIES)
  dns = await startDns({
    mx: [...domains, 'plain.example', ...Object.keys(TLS_POLICY)].map((d) => ({ domain: d, host: `mx.${d}` })),
    a: [
      ...domains.map((d) => ({ name: `mta-sts.${d}`, ip: '127.0.0.1' })),
      { name: 'mx.good.example', ip: '127.0.0.2' },
      { name: 'mx.badcert.example', ip: '127.0.0.3' },
      { name: 'mx.unlisted.example', ip: '127.0.0.4' },
      { name: 'mx.testing.example', ip: '127.0.0.3' },
      { name: 'mx.nopolicy.example', ip: '127.0.0.3' },
      { name: 'mx.plain.example', ip: '127.0.0.3' },
      ...Object.entries(TLS_POLICY).map(([d, { ip }]) => ({ name: `mx.${d}`, ip })),
    ],
    txt: domains.map((d) => ({ name: `_mta-sts.${d}`, text: 'v=STSv1; id=20261130' })),
  })
  app = await startAppliance({
    env: {
      DNS_SERVERS: dns.server,
      OUTBOUND_PORT: String(port),
      OUTBOUND_MTA_STS_PORT: String((policyServer.address() as AddressInfo).port),
      NODE_EXTRA_CA_CERTS: caFile,
      TRUSTED_NETWORKS: '127.0.0.1',
      QUEUE_RETRY_MIN: '1s',
      QUEUE_RETRY_MAX: '2s',
      OUTBOUND_TLS_POLICY: Object.entries(TLS_POLICY)
        .map(([d, { level }]) => `${d}:${level}`)
        .join(','),
    },
  })
  spool = await openSpool(app.spoolDir)
})

after(async () => {
  await app?.stop()
  for (const f of Object.values(fwd)) await f.close()
  await goodMx?.close()
  await badMx?.close()
  await plainMx?.close()
  await new Promise((resolve) => policyServer?.close(resolve))
  await dns?.close()
  await removeDir(dir)
})

const send = (to: string, subject: string): Promise<void> =>
  sendPlain(app.port('smtp-ingress', 'smtp'), 'alice@ours.example', [to], subject)
const received = (mx: ScriptedMx, rcpt: string) =>
  waitFor(`a message for ${rcpt}`, async () => mx.messages.find((m) => m.to.includes(rcpt)), { context: () => app.output().slice(-3000) })
const deferral = (rcpt: string) =>
  waitFor(
    `a deferral for ${rcpt}`,
    async () => {
      const r = (await queuedFor(spool, rcpt))?.envelope.recipients[0]
      return r?.status === 'deferred' && r.lastError
    },
    { context: () => app.output().slice(-3000) },
  )

test('enforce: delivered over TLS to the MX host the policy names, its certificate valid for that name; the policy kept in the spool', async () => {
  await send('user@good.example', 'enforced')
  const m = await received(goodMx, 'user@good.example')
  assert.equal(m.tls, true)
  const kept = JSON.parse(await fs.readFile(path.join(app.spoolDir, 'mta-sts', 'good.example.json'), 'utf8'))
  assert.equal(kept.id, '20261130')
  assert.deepEqual(kept.policy, { mode: 'enforce', mx: ['mx.good.example'], maxAge: 86400 })
})

test('enforce: an MX host whose certificate is not valid gets nothing, the message waits; with no policy the same host takes it', async () => {
  await send('user@badcert.example', 'bad certificate')
  assert.match(
    await deferral('user@badcert.example'),
    /^451 4\.7\.5 mx\.badcert\.example\[127\.0\.0\.3\]:\d+: certificate not valid: self-signed certificate \(TLS is required by the MTA-STS policy of badcert\.example\)/,
  )
  assert.equal(badMx.messages.filter((m) => m.to.includes('user@badcert.example')).length, 0)

  await send('user@plain.example', 'no policy published')
  assert.equal((await received(badMx, 'user@plain.example')).tls, true, 'opportunistic TLS, certificate unchecked')
})

test('enforce: MX hosts the policy does not name are never connected to', async () => {
  const before = fwd.unlisted.connections
  await send('user@unlisted.example', 'unlisted MX')
  assert.match(
    await deferral('user@unlisted.example'),
    /^451 4\.7\.5 No MX host of unlisted\.example is one its MTA-STS policy names \(mx\.elsewhere\.example\)/,
  )
  assert.equal(fwd.unlisted.connections, before)
})

test('testing: delivered as without a policy, the mismatch logged; a policy that cannot be fetched is no policy', async () => {
  await send('user@testing.example', 'testing mode')
  await received(badMx, 'user@testing.example')
  await app.waitForLog(/MTA-STS \(testing\): MX hosts outside the policy.*testing\.example/)

  await send('user@nopolicy.example', 'policy missing')
  await received(badMx, 'user@nopolicy.example')
  await app.waitForLog(/MTA-STS policy not fetched.*nopolicy\.example.*HTTP 404/)
})

test('OUTBOUND_TLS_POLICY verify: over TLS with a certificate valid for the MX name, or the mail waits (4.7.5)', async () => {
  await send('user@pinned.example', 'pinned')
  assert.equal((await received(goodMx, 'user@pinned.example')).tls, true)
  await send('user@pinnedbad.example', 'pinned, bad certificate')
  assert.match(
    await deferral('user@pinnedbad.example'),
    /^451 4\.7\.5 mx\.pinnedbad\.example\[127\.0\.0\.3\]:\d+: certificate not valid: self-signed certificate \(TLS is required by OUTBOUND_TLS_POLICY \(pinnedbad\.example:verify\)\)/,
  )
  assert.equal(badMx.messages.filter((m) => m.to.includes('user@pinnedbad.example')).length, 0)
})

test('OUTBOUND_TLS_POLICY encrypt: over TLS whatever the certificate, or the mail waits (4.7.10); none: in clear though TLS is offered', async () => {
  await send('user@encrypted.example', 'encrypted')
  assert.equal((await received(badMx, 'user@encrypted.example')).tls, true)
  await send('user@encryptednotls.example', 'no STARTTLS there')
  assert.match(
    await deferral('user@encryptednotls.example'),
    /^451 4\.7\.10 .*\(TLS is required by OUTBOUND_TLS_POLICY \(encryptednotls\.example:encrypt\)\)/,
  )
  assert.equal(plainMx.messages.length, 0)
  await send('user@cleartext.example', 'in clear')
  assert.equal((await received(badMx, 'user@cleartext.example')).tls, false)
})
