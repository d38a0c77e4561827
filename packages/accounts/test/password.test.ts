// Hashes made by the real doveadm pw (Dovecot 2.3, as docker-mailserver's `setup email add` makes
// them), verified by ours: a users file from another Dovecot host works here as it is.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { hashPassword, verifyPassword } from '@facteur/accounts'

const PASSWORD = 'pässword 1'
const doveadm = async (scheme: string): Promise<string> =>
  (await promisify(execFile)('/usr/bin/doveadm', ['pw', '-s', scheme, '-p', PASSWORD])).stdout.trim()

const SUPPORTED = ['SHA512-CRYPT', 'SHA256-CRYPT', 'CRYPT', 'BLF-CRYPT', 'SSHA512', 'SSHA256', 'SSHA', 'SHA512', 'SHA256', 'SHA']
const ALSO = ['SHA256.HEX', 'SSHA512.HEX', 'PLAIN-MD5', 'SMD5', 'PBKDF2', 'PLAIN', 'CLEARTEXT']

test('every scheme doveadm pw writes that we support: the right password matches, a wrong one does not', async () => {
  for (const scheme of [...SUPPORTED, ...ALSO]) {
    const stored = await doveadm(scheme)
    assert.ok(stored.startsWith(`{${scheme}}`), stored)
    assert.equal(await verifyPassword(stored, PASSWORD), true, stored)
    assert.equal(await verifyPassword(stored, 'pässword 2'), false, stored)
    assert.equal(await verifyPassword(stored, ''), false, stored)
  }
})

test('{CRYPT} holding a SHA-512 crypt hash (what crypt(3) gives) matches too', async () => {
  const sha512 = (await doveadm('SHA512-CRYPT')).replace('{SHA512-CRYPT}', '{CRYPT}')
  assert.equal(await verifyPassword(sha512, PASSWORD), true)
})

test('schemes we do not verify never match: MD5-CRYPT, ARGON2ID, a damaged or unknown hash', async () => {
  for (const stored of [
    await doveadm('MD5-CRYPT'),
    await doveadm('ARGON2ID'),
    '{SHA512-CRYPT}$6$salt',
    '{SHA512-CRYPT}$6$rounds=99999999$salt$AkOOBO38SQQ8T8Q46KuCONe',
    '{SSHA256}c2hvcnQ=',
    '{PBKDF2}$1$salt$0$00',
    '{NOPE}x',
  ])
    assert.equal(await verifyPassword(stored, PASSWORD), false, stored)
})

test('new hashes are BLF-CRYPT, which doveadm pw -t verifies', async () => {
  const stored = await hashPassword(PASSWORD)
  assert.match(stored, /^\{BLF-CRYPT\}\$2b\$10\$/)
  const r = await promisify(execFile)('/usr/bin/doveadm', ['pw', '-t', stored, '-p', PASSWORD])
  assert.match(r.stdout, /verified/)
})
