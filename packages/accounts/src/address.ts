// Address parts as the tables key them: the domain in lower case (RFC 5321 §2.4 leaves local
// parts case-sensitive; we match them case-insensitively, as every mail host people use does).

export function splitAddress(address: string): { local: string; domain: string } | null {
  const at = address.lastIndexOf('@')
  if (at <= 0 || at === address.length - 1) return null
  return {
    local: address.slice(0, at),
    domain: address
      .slice(at + 1)
      .toLowerCase()
      .replace(/\.$/, ''),
  }
}

export function normalizeAddress(address: string): string {
  const parts = splitAddress(address.trim())
  return parts ? `${parts.local.toLowerCase()}@${parts.domain}` : address.trim().toLowerCase()
}

/** An aliases-file `@domain` entry (a domain's catch-all as a name, a domain alias as a target). */
export function isDomainEntry(name: string): boolean {
  return /^@[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(name)
}
