// Password hashes in Dovecot's `{SCHEME}hash` notation. New ones are BLF-CRYPT (bcrypt).
import bcrypt from 'bcryptjs'
import { timingSafeEqual, createHash } from 'node:crypto'

export async function hashPassword(password: string): Promise<string> {
  return `{BLF-CRYPT}${await bcrypt.hash(password, 10)}`
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  const m = /^\{([A-Z0-9.-]+)\}(.*)$/i.exec(stored)
  const scheme = m ? m[1].toUpperCase() : 'PLAIN'
  const hash = m ? m[2] : stored
  switch (scheme) {
    case 'BLF-CRYPT':
    case 'BCRYPT':
      return hash.startsWith('$2') && bcrypt.compare(password, hash.replace(/^\$2y\$/, '$2b$'))
    case 'PLAIN':
    case 'CLEARTEXT': {
      // Compare digests so the comparison takes the same time whatever the lengths.
      const a = createHash('sha256').update(hash).digest()
      const b = createHash('sha256').update(password).digest()
      return timingSafeEqual(a, b)
    }
    default:
      return false
  }
}
