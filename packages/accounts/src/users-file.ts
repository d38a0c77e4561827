// Dovecot's passwd-file format: user:password:uid:gid:gecos:home:shell:extra_fields
// (https://doc.dovecot.org/configuration_manual/authentication/passwd_file/), so Dovecot can share it.
import { normalizeAddress } from './address.js'

export type UserEntry = { address: string; password: string; rest: string[] }

export function parseUsers(text: string): Map<string, UserEntry> {
  const users = new Map<string, UserEntry>()
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const [user, password = '', ...rest] = line.split(':')
    if (!user.includes('@')) continue
    const address = normalizeAddress(user)
    users.set(address, { address, password, rest })
  }
  return users
}

export function formatUsers(users: Iterable<UserEntry>): string {
  return [...users].map((u) => [u.address, u.password, ...u.rest].join(':').replace(/:+$/, '')).join('\n') + '\n'
}

/** Dovecot's quota units (1024-based); no unit is bytes. */
const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/**
 * The user's own mailbox quota in bytes, from the extra field Dovecot reads
 * (`userdb_quota_rule=*:storage=1G`, 0 for none): so one users file gives Dovecot's quota plugin
 * and delivery the same limit. undefined when the user has none (MAILBOX_QUOTA applies).
 */
export function userQuota(user: UserEntry): number | undefined {
  // The extra fields are the rest of the line: their values may hold colons (`*:storage=`).
  const extra = user.rest.slice(5).join(':')
  const m = /(?:^|\s)(?:userdb_)?quota_rule=\*:storage=(\d+)([bkmgt]?)(?:\s|$)/i.exec(extra)
  return m ? Number(m[1]) * UNITS[m[2].toLowerCase()] : undefined
}

/** The entry with its quota field set to `bytes` (null: removed), other extra fields kept. */
export function withQuota(user: UserEntry, bytes: number | null): UserEntry {
  const rest = user.rest.slice(0, 5)
  while (rest.length < 5) rest.push('')
  const fields = user.rest
    .slice(5)
    .join(':')
    .split(/\s+/)
    .filter((f) => f && !/^(?:userdb_)?quota_rule=\*:/i.test(f))
  if (bytes !== null) fields.push(`userdb_quota_rule=*:storage=${sizeText(bytes)}`)
  rest.push(fields.join(' '))
  return { ...user, rest }
}

/** `1G`, `512M`, `100k`, `123b`: the largest of Dovecot's units that divides the size. */
function sizeText(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'k'])
    if (bytes >= UNITS[unit.toLowerCase()] && bytes % UNITS[unit.toLowerCase()] === 0) return `${bytes / UNITS[unit.toLowerCase()]}${unit}`
  return `${bytes}b`
}
