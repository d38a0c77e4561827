// Submission's TLS on the running appliance: TLS 1.2 at least, and a certificate renewed on disk
// (new files renamed into place, as certbot does) served from the next connection on, with and
// without SNI, on every listener, without a restart; health follows it.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { startAppliance, type Appliance } from './support/appliance.js'

let app: Appliance
let dir: string
let certFile: string
let keyFile: string

const openssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore', timeout: 20_000 })

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-tls-'))
  certFile = path.join(dir, 'fullchain.pem')
  keyFile = path.join(dir, 'privkey.pem')
  // A certificate signed by a test CA (not self-signed: health says ok).
  const ca = (name: string): string => path.join(dir, name)
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    ca('ca.key'),
    '-out',
    ca('ca.crt'),
    '-subj',
    '/CN=Facteur test CA',
    '-days',
    '2',
  )
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', ca('server.csr'), '-subj', '/CN=mx.ours.example')
  await fs.writeFile(ca('san.ext'), 'subjectAltName=DNS:mx.ours.example\n')
  openssl(
    'x509',
    '-req',
    '-in',
    ca('server.csr'),
    '-CA',
    ca('ca.crt'),
    '-CAkey',
    ca('ca.key'),
    '-CAcreateserial',
    '-out',
    certFile,
    '-days',
    '2',
    '-extfile',
    ca('san.ext'),
  )
  app = await startAppliance({
    services: ['smtp-ingress', 'delivery', 'submission'],
    env: { TLS_CERT: certFile, TLS_KEY: keyFile, SUBMISSION_ALT_PORT: '0', SUBMISSION_ALT_TLS: 'starttls' },
  })
})
after(async () => {
  await app?.stop()
  await fs.rm(dir, { recursive: true, force: true })
})

const fingerprintOf = async (file: string): Promise<string> => new X509Certificate(await fs.readFile(file)).fingerprint256

/** The certificate a listener serves: implicit TLS, or STARTTLS after EHLO. `servername` '' sends no SNI. */
async function served(listener: 'submission' | 'submissions' | 'alt', servername = '', extra: tls.ConnectionOptions = {}): Promise<string> {
  const port = app.port('submission', listener)
  const socket = net.connect({ host: '127.0.0.1', port })
  socket.setTimeout(10_000, () => socket.destroy(new Error('timed out')))
  try {
    if (listener !== 'submissions') {
      await expectReply(socket, /^220 /)
      socket.write('EHLO client.example\r\n')
      await expectReply(socket, /^250 /)
      socket.write('STARTTLS\r\n')
      await expectReply(socket, /^220 /)
    }
    const secure = tls.connect({ socket, rejectUnauthorized: false, servername, ...extra })
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve)
      secure.once('error', reject)
    })
    const fp = secure.getPeerCertificate().fingerprint256
    secure.destroy()
    return fp
  } finally {
    socket.destroy()
  }
}

/** Reads until a whole reply (its last line `code SP`) has come. */
function expectReply(socket: net.Socket, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const onData = (c: Buffer): void => {
      text += c.toString('latin1')
      const last = /(?:^|\r\n)(\d{3} [^\r\n]*)\r\n$/.exec(text)
      if (!last) return
      socket.off('data', onData)
      if (re.test(last[1])) resolve(text)
      else reject(new Error(`unexpected reply: ${text}`))
    }
    socket.on('data', onData)
    socket.once('error', reject)
  })
}

async function health(): Promise<{ status: string; checks: Record<string, { status: string; detail?: string }> }> {
  const body = await new Promise<string>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: app.port('submission', 'health'), path: '/healthz' }, (res) => {
        let b = ''
        res.on('data', (c: Buffer) => (b += c.toString()))
        res.on('end', () => (res.statusCode === 200 ? resolve(b) : reject(new Error(`HTTP ${res.statusCode}: ${b}`))))
      })
      .on('error', reject)
  })
  return JSON.parse(body) as { status: string; checks: Record<string, { status: string; detail?: string }> }
}

test('TLS 1.2 is the least a client may use', async () => {
  const old = { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' } as const
  await assert.rejects(served('submissions', '', old), /alert protocol version/)
  await assert.rejects(served('submission', '', old), /alert protocol version/)
  assert.equal(
    await served('submissions', '', { ...old, maxVersion: 'TLSv1.2' }),
    await fingerprintOf(certFile),
    'the same client with TLS 1.2 gets in',
  )
})

test('a renewed certificate is served on the next connection, with and without SNI, on every listener, without a restart', async () => {
  const first = await fingerprintOf(certFile)
  for (const l of ['submission', 'submissions', 'alt'] as const) assert.equal(await served(l), first, l)
  assert.equal((await health()).checks.tls.status, 'ok', 'a CA-signed certificate')

  // The renewal: new files beside the old ones, renamed over them (the key first, then the certificate).
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${keyFile}.new`,
    '-out',
    `${certFile}.new`,
    '-subj',
    '/CN=mx.ours.example',
    '-days',
    '2',
  )
  await fs.rename(`${keyFile}.new`, keyFile)
  await fs.rename(`${certFile}.new`, certFile)
  const renewed = await fingerprintOf(certFile)
  assert.notEqual(renewed, first)

  assert.equal(await served('submissions'), renewed, '465 without SNI')
  assert.equal(await served('submissions', 'mx.ours.example'), renewed, '465 with SNI')
  assert.equal(await served('submission'), renewed, '587 STARTTLS without SNI')
  assert.equal(await served('submission', 'mx.ours.example'), renewed, '587 STARTTLS with SNI')
  assert.equal(await served('alt'), renewed, 'the alternate port')
  assert.deepEqual(
    (await health()).checks.tls,
    { status: 'degraded', detail: 'self-signed certificate' },
    'health follows the new certificate',
  )
  assert.doesNotMatch(app.output(), /service exited/, 'no restart')
})
