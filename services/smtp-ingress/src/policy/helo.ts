// SMTP_HELO_CHECK: the name a client gives in HELO/EHLO is its fully qualified domain name, or an
// address literal when it has none (RFC 5321 §4.1.1.1, §4.1.3). Mail servers do so; a name that
// is no host name at all (`!!!`, `a..b`, `-x-`) is most often spamware's. Postfix's
// reject_invalid_helo_hostname (`invalid`, the default, as docker-mailserver sets it) and
// reject_non_fqdn_helo_hostname (`fqdn`), with their replies, at RCPT as Postfix delays them.
import { isIP } from 'node:net'
import { SmtpError } from '@facteur/smtp-error'

export type HeloMode = 'invalid' | 'fqdn' | 'off'

/** The refusal of mail from a client that greeted with `helo`, or null. */
export function heloRefusal(mode: HeloMode, helo: string): SmtpError | null {
  if (mode === 'off') return null
  const literal = /^\[(?:IPv6:)?([^\]]+)\]$/i.exec(helo)
  if (literal) {
    const v6 = /^\[IPv6:/i.test(helo)
    // RFC 5321 §4.1.3: [192.0.2.1], [IPv6:2001:db8::1].
    if (isIP(literal[1]) === (v6 ? 6 : 4)) return null
    return invalid(helo)
  }
  if (isIP(helo)) return mode === 'fqdn' ? nonFqdn(helo) : null
  if (!validHostname(helo)) return invalid(helo)
  if (mode === 'fqdn' && !helo.includes('.')) return nonFqdn(helo)
  return null
}

/**
 * Postfix's valid_hostname(): at most 255 characters, labels of 1 to 63 letters, digits, `-` or
 * `_`, none starting or ending with `-`, and not all digits (that would be an address).
 */
function validHostname(name: string): boolean {
  if (name.length === 0 || name.length > 255) return false
  const labels = name.split('.')
  if (labels.every((l) => /^\d+$/.test(l))) return false
  return labels.every((l) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(l))
}

/** Postfix's invalid_hostname_reject_code 501, and its text. */
function invalid(helo: string): SmtpError {
  return new SmtpError(501, '5.2', `<${shown(helo)}>: Helo command rejected: Invalid name`)
}

/** Postfix's non_fqdn_reject_code 504, and its text. */
function nonFqdn(helo: string): SmtpError {
  return new SmtpError(504, '5.2', `<${shown(helo)}>: Helo command rejected: need fully-qualified hostname`)
}

/** The name as it may be echoed in a reply: printable ASCII, at most 100 characters. */
function shown(helo: string): string {
  const clean = helo.replace(/[^\x21-\x7e]/g, '?')
  return clean.length > 100 ? `${clean.slice(0, 100)}...` : clean
}
