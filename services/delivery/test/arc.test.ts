import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { dkimKeyFile, loadConfig } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { arcInput, createSealer } from '../src/outbound/arc.js'
import { dkimKeys } from '../src/outbound/dkim.js'

const ID = 'mx.ours.example'
const msg = (...head: string[]) => Buffer.from(`${head.join('\r\n')}\r\nFrom: a@sender.test\r\nSubject: s\r\n\r\nBody\r\n`)
const ours = (results: string) => `Authentication-Results: ${ID};\r\n dkim=none (message not signed);\r\n ${results}`

test('no chain: our results are repeated as they were folded, cv=none', () => {
  assert.deepEqual(arcInput(msg(ours('spf=none smtp.mailfrom=a@sender.test')), ID), {
    authResults: `${ID};\r\n dkim=none (message not signed);\r\n spf=none smtp.mailfrom=a@sender.test`,
    cv: 'none',
  })
})

test('a chain we found valid is extended with cv=pass', () => {
  const input = arcInput(msg(ours('arc=pass (i=1 spf=pass)'), 'ARC-Seal: i=1; cv=none; d=lists.example'), ID)
  assert.equal(input?.cv, 'pass')
})

test('nothing to seal: the filter did not check, another host did, the chain failed or was not checked, or it is full', () => {
  assert.equal(arcInput(msg('Subject: only'), ID), null)
  assert.equal(arcInput(msg(`Authentication-Results: mx.elsewhere.example; spf=pass`), ID), null)
  assert.equal(arcInput(msg(ours('arc=fail (signature error)'), 'ARC-Seal: i=1; cv=none'), ID), null)
  // A timed-out check writes no arc= result: a chain we did not verify is not vouched for.
  assert.equal(arcInput(msg(ours('dmarc=temperror'), 'ARC-Seal: i=1; cv=none'), ID), null)
  // arc=pass with no ARC-Seal in the header: not something we can extend.
  assert.equal(arcInput(msg(ours('arc=pass')), ID), null)
  const fifty = Array.from({ length: 50 }, (_, i) => `ARC-Seal: i=${50 - i}; cv=pass`)
  assert.equal(arcInput(msg(ours('arc=pass'), ...fifty), ID), null)
})

test('sealed with an RSA key only: no key or an Ed25519 key leaves the message as it was', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-arc-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  const config = loadConfig({ MAIL_DOMAIN: 'ours.example', MAIL_HOSTNAME: ID, CONFIG_DIR: dir })
  const sealer = createSealer(config, createLogger({ service: 'test', level: 'error' }), dkimKeys(config))
  const message = msg(ours('spf=none smtp.mailfrom=a@sender.test'))
  assert.equal(await sealer.seal(message, 'ours.example'), message)

  const keyFile = dkimKeyFile(dir, 'ours.example', config.outbound.dkimSelector)
  await fs.mkdir(path.dirname(keyFile), { recursive: true })
  await fs.writeFile(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }))
  assert.equal(await sealer.seal(message, 'ours.example'), message)

  await fs.writeFile(keyFile, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }))
  const sealed = (await sealer.seal(message, 'ours.example')).toString()
  assert.match(sealed, /^ARC-Seal: i=1; a=rsa-sha256; [^]*?cv=none; d=ours\.example;\s+s=facteur;/)
  assert.ok(sealed.endsWith(message.toString()))
})
