import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { authenticate } from 'mailauth'
import { dkimKeyFile, loadConfig } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { createSigner, dkimKeys } from '../src/outbound/dkim.js'

const message = Buffer.from(
  'From: Alice <alice@ours.example>\r\nTo: <bob@remote.example>\r\nSubject: hi\r\nMessage-ID: <1@ours.example>\r\n\r\nthe body\r\n',
)

test('the signature holds when the clock passes a second boundary while signing (t= is read once)', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-dkim-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const config = loadConfig({ MAIL_DOMAIN: 'ours.example', CONFIG_DIR: dir })
  const keyFile = dkimKeyFile(dir, 'ours.example', config.outbound.dkimSelector)
  await fs.mkdir(path.dirname(keyFile), { recursive: true })
  await fs.writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }))
  const signer = createSigner(config, createLogger({ service: 'test', level: 'error' }), dkimKeys(config))

  // Each reading of the clock is 600 ms after the one before, from x.400 s: any two readings
  // round to different seconds (mailauth rounds Date.now() for t= when it is not given one).
  let now = 1_795_898_103_400
  t.mock.method(Date, 'now', () => (now += 600))
  const { message: signed, domain } = await signer.sign(message)
  t.mock.restoreAll()
  assert.equal(domain, 'ours.example')

  const record = `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`
  const result = await authenticate(signed, {
    ip: '127.0.0.1',
    helo: 'localhost',
    sender: 'alice@ours.example',
    mta: 'mx.remote.example',
    disableArc: true,
    disableDmarc: true,
    resolver: async (name, rrtype) => {
      if (rrtype === 'TXT' && name === `${config.outbound.dkimSelector}._domainkey.ours.example`) return [[record]]
      throw Object.assign(new Error(`no ${rrtype} for ${name}`), { code: 'ENOTFOUND' })
    },
  })
  assert.deepEqual(
    result.dkim.results?.map((r) => [r.signingDomain, r.status.result, r.status.comment]),
    [['ours.example', 'pass', undefined]],
  )
})
