// The Sender Rewriting Scheme (Shevek's "guarded" scheme of libsrs2, as postsrsd writes it), so
// that mail an alias forwards to another host passes SPF there (RFC 7208 §1.2.3, Appendix D): the
// forwarded copy's reverse-path becomes an address in SRS_DOMAIN, and a bounce sent back to that
// address is turned into the original sender again.
//
//   alice@a.example                    -> SRS0=HHHH=TT=a.example=alice@ours.example
//   SRS0=hhhh=tt=a.example=alice@b.ex  -> SRS1=HHHH=b.ex==hhhh=tt=a.example=alice@ours.example
//
// HHHH: the first 4 base64 characters of HMAC-SHA1(secret, the fields after it, in lower case);
// TT: the day it was made (days since 1970, modulo 1024, two base32 characters). The addresses
// are postsrsd's (test/srs-postsrsd.test.ts asks a real one), so a secret copied from
// /etc/postsrsd.secret keeps the addresses an earlier server made valid here.
import { createHmac } from 'node:crypto'

/** Days a forwarded copy's SRS address stays good for a bounce (libsrs2's and postsrsd's default). */
export const SRS_MAX_AGE_DAYS = 21

const DAY_MS = 86_400_000
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
const SLOTS = 1024
const HASH_LENGTH = 4
/** SRS0/SRS1 and the first separator; libsrs2 reads any of = - + there, and only = after. */
const TAG = /^(SRS[01])[=+-]/i

/** The local part is in SRS form (SRS0/SRS1 and a separator): one to reverse, or to refuse. */
export function isSrsLocal(local: string): boolean {
  return TAG.test(local)
}

/** An address that claims to be one of our SRS addresses and is not: forged, damaged or too old. */
export class SrsError extends Error {}

export type Srs = {
  readonly domain: string
  /** The reverse-path for a copy of `sender`'s message forwarded from here. */
  forward(sender: string, now?: number): string
  /** The address one of our SRS addresses stands for; null when `local` is no SRS local part. Throws SrsError. */
  reverse(local: string, now?: number): string | null
}

export function createSrs(opts: { domain: string; secrets: readonly string[]; maxAgeDays?: number }): Srs {
  const { domain, secrets } = opts
  if (secrets.length === 0) throw new Error('SRS needs a secret')
  const maxAge = opts.maxAgeDays ?? SRS_MAX_AGE_DAYS
  const hash = (secret: string, ...fields: string[]): string => {
    const h = createHmac('sha1', secret)
    for (const f of fields) h.update(asciiLower(f), 'latin1')
    return h.digest('base64').slice(0, HASH_LENGTH)
  }
  const sign = (...fields: string[]): string => hash(secrets[0], ...fields)
  const check = (given: string, ...fields: string[]): void => {
    // libsrs2 compares hashes without regard to case: some hosts lower-case the addresses they pass on.
    if (given.length !== HASH_LENGTH || !secrets.some((s) => hash(s, ...fields).toLowerCase() === given.toLowerCase()))
      throw new SrsError('Invalid SRS address')
  }

  return {
    domain,
    forward(sender, now = Date.now()) {
      const at = sender.lastIndexOf('@')
      if (at <= 0) throw new SrsError(`Not an address: ${sender}`)
      const user = sender.slice(0, at)
      const host = sender.slice(at + 1)
      const tag = TAG.exec(user)?.[1].toUpperCase()
      if (tag === 'SRS1') {
        // SRS1=hash=firsthop=rest: the first forwarder's address kept, signed again by us.
        const [, first, rest] = fields(user.slice(5), 3)
        if (!first || rest === undefined) return srs0(user, host, now)
        return `SRS1=${sign(first, rest)}=${first}=${rest}@${domain}`
      }
      // SRS0 of another forwarder: its whole address kept, under its host, in an SRS1.
      if (tag === 'SRS0') return `SRS1=${sign(host, user.slice(4))}=${host}=${user.slice(4)}@${domain}`
      return srs0(user, host, now)
    },
    reverse(local, now = Date.now()) {
      const tag = TAG.exec(local)?.[1].toUpperCase()
      if (!tag) return null
      if (tag === 'SRS1') {
        const [given, first, rest] = fields(local.slice(5), 3)
        if (!first || !rest) throw new SrsError('Invalid SRS address')
        check(given, first, rest)
        return `SRS0${rest}@${first}`
      }
      const [given, stamp, host, user] = fields(local.slice(5), 4)
      if (!stamp || !host || !user) throw new SrsError('Invalid SRS address')
      check(given, stamp, host, user)
      if (!fresh(stamp, now, maxAge)) throw new SrsError('Expired SRS address')
      return `${user}@${host}`
    },
  }

  function srs0(user: string, host: string, now: number): string {
    const stamp = timestamp(now)
    return `SRS0=${sign(stamp, host, user)}=${stamp}=${host}=${user}@${domain}`
  }
}

/** `text` split at its first `count - 1` equals signs; the last field keeps the rest. */
function fields(text: string, count: number): string[] {
  const out: string[] = []
  let rest = text
  while (out.length < count - 1) {
    const i = rest.indexOf('=')
    if (i < 0) break
    out.push(rest.slice(0, i))
    rest = rest.slice(i + 1)
  }
  out.push(rest)
  return out
}

function timestamp(now: number): string {
  const day = Math.floor(now / DAY_MS)
  return BASE32[(day >> 5) & 31] + BASE32[day & 31]
}

/** A stamp at most `maxAge` days old, counted modulo 1024 days as libsrs2 does. */
function fresh(stamp: string, now: number, maxAge: number): boolean {
  if (stamp.length !== 2) return false
  let then = 0
  for (const c of stamp.toUpperCase()) {
    const v = BASE32.indexOf(c)
    if (v < 0) return false
    then = (then << 5) | v
  }
  let today = Math.floor(now / DAY_MS) % SLOTS
  while (today < then) today += SLOTS
  return today <= then + maxAge
}

/** Lower case of ASCII letters only, as libsrs2's tolower() in the C locale. */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase())
}
