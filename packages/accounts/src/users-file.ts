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
