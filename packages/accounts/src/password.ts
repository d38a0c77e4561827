// Password hashes in Dovecot's `{SCHEME}hash` notation (doveadm-pw(1), Dovecot's "Password
// Schemes"). New ones are BLF-CRYPT (bcrypt). Verified too, so that a users file brought from
// another Dovecot host works as it is: SHA512-CRYPT and SHA256-CRYPT (docker-mailserver's and
// doveadm's usual ones, by unixcrypt), CRYPT holding one of those or bcrypt, the salted and plain
// SHA digests (SSHA512 ... SHA, also `.HEX`), PLAIN-MD5, SMD5 and PBKDF2. Not: MD5-CRYPT, DES
// CRYPT, ARGON2 (a user with one cannot log in; `mailctl user passwd` gives a new hash).
import bcrypt from 'bcryptjs'
import { timingSafeEqual, createHash, pbkdf2Sync } from 'node:crypto'
import { verify as verifyShaCrypt } from 'unixcrypt'

export async function hashPassword(password: string): Promise<string> {
  return `{BLF-CRYPT}${await bcrypt.hash(password, 10)}`
}

/** Digest schemes: the hash, and its length in bytes (the rest of a salted one is the salt). */
const DIGESTS: Record<string, { algorithm: string; salted: boolean }> = {
  SHA: { algorithm: 'sha1', salted: false },
  SHA1: { algorithm: 'sha1', salted: false },
  SHA256: { algorithm: 'sha256', salted: false },
  SHA512: { algorithm: 'sha512', salted: false },
  SSHA: { algorithm: 'sha1', salted: true },
  SSHA256: { algorithm: 'sha256', salted: true },
  SSHA512: { algorithm: 'sha512', salted: true },
  'PLAIN-MD5': { algorithm: 'md5', salted: false },
  SMD5: { algorithm: 'md5', salted: true },
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  const m = /^\{([A-Z0-9.-]+)\}(.*)$/i.exec(stored)
  const named = m ? m[1].toUpperCase() : 'PLAIN'
  const hash = m ? m[2] : stored
  // `{SCHEME.HEX}` and `{SCHEME.B64}` say how a digest is written (PLAIN-MD5 is hex by default).
  const [scheme, encoding = scheme === 'PLAIN-MD5' ? 'HEX' : 'B64'] = named.split('.')
  switch (scheme) {
    case 'BLF-CRYPT':
    case 'BCRYPT':
      return bcryptMatches(hash, password)
    case 'SHA512-CRYPT':
    case 'SHA256-CRYPT':
      return shaCryptMatches(hash, password, scheme === 'SHA512-CRYPT' ? '$6$' : '$5$')
    case 'CRYPT':
      // crypt(3)'s result: the prefix names the method.
      if (hash.startsWith('$2')) return bcryptMatches(hash, password)
      return shaCryptMatches(hash, password, hash.startsWith('$6$') ? '$6$' : '$5$')
    case 'PBKDF2': {
      // Dovecot: `$1$SALT$ROUNDS$HEX`, PBKDF2 with HMAC-SHA1, 20 bytes.
      const p = /^\$1\$([^$]+)\$(\d+)\$([0-9a-f]{40})$/i.exec(hash)
      if (!p || Number(p[2]) < 1 || Number(p[2]) > 10_000_000) return false
      return equal(pbkdf2Sync(password, p[1], Number(p[2]), 20, 'sha1'), Buffer.from(p[3], 'hex'))
    }
    case 'PLAIN':
    case 'CLEARTEXT':
      return equal(Buffer.from(hash), Buffer.from(password))
    default: {
      const digest = DIGESTS[scheme]
      if (!digest) return false
      const raw = Buffer.from(hash, encoding === 'HEX' ? 'hex' : 'base64')
      const size = createHash(digest.algorithm).digest().length
      if (raw.length < size || (!digest.salted && raw.length !== size)) return false
      const salt = raw.subarray(size)
      return equal(createHash(digest.algorithm).update(password).update(salt).digest(), raw.subarray(0, size))
    }
  }
}

function bcryptMatches(hash: string, password: string): Promise<boolean> | boolean {
  return hash.startsWith('$2') && bcrypt.compare(password, hash.replace(/^\$2y\$/, '$2b$'))
}

function shaCryptMatches(hash: string, password: string, prefix: '$5$' | '$6$'): boolean {
  if (!hash.startsWith(prefix)) return false
  // A rounds= beyond crypt(3)'s range is not a hash (and would hold the event loop for long).
  const rounds = /^\$[56]\$rounds=(\d+)\$/.exec(hash)?.[1]
  if (rounds !== undefined && Number(rounds) > 999_999) return false
  try {
    return verifyShaCrypt(password, hash)
  } catch {
    return false
  }
}

/** Compares digests, so that the time taken does not depend on where or whether they differ. */
function equal(a: Buffer, b: Buffer): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}
