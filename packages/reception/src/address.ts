// The syntax of a recipient before any table is asked: relay tricks and local parts that could
// name a file outside the mailbox directory are refused here, whatever the domain.
import { SmtpError } from '@facteur/smtp-error'

export type ParsedRecipient = { local: string; domain: string; address: string }

// RFC 5322 §3.2.3 atext without `/` (a path separator), `%` and `!` (routing, below).
const SAFE_LOCAL = /^[A-Za-z0-9#$&'*+=?^_`{|}~.-]+$/
// An SRS address (packages/accounts/src/srs.ts) carries base64 hashes, `/` included: it is
// reversed to an address, its hash checked, and never names a mailbox.
const SRS_LOCAL = /^SRS[01][=+-][A-Za-z0-9#$&'*+=?^_`{|}~./-]+$/i

export const RELAY_DENIED = new SmtpError(554, '7.1', 'Relay access denied')

export function parseRecipient(raw: string, defaultDomain: string): ParsedRecipient {
  // RFC 5321 §4.1.1.3: RCPT TO:<Postmaster> without a domain must be accepted.
  if (/^postmaster$/i.test(raw)) return { local: 'postmaster', domain: defaultDomain, address: `postmaster@${defaultDomain}` }
  // RFC 5321 §4.1.1.3 source routes (`@relay:user@dest`) and RFC 6531 UTF-8 addresses we do not offer.
  if (raw.startsWith('@') || raw.includes(':')) throw RELAY_DENIED
  if (/[^\x20-\x7e]/.test(raw.replace(/[\x00-\x1f\x7f]/g, ''))) throw new SmtpError(553, '6.7', 'Non-ASCII addresses are not accepted here')
  const at = raw.lastIndexOf('@')
  if (at <= 0) throw new SmtpError(553, '1.3', 'Bad recipient address syntax')
  let local = raw.slice(0, at)
  const domain = raw
    .slice(at + 1)
    .toLowerCase()
    .replace(/\.$/, '')
  if (local.startsWith('"') && local.endsWith('"') && local.length >= 2) local = local.slice(1, -1).replace(/\\(.)/g, '$1')
  // The classic relay tricks: user%other@ours, other!user@ours, "user@other"@ours, user@other@ours.
  if (/[%!@]/.test(local)) throw RELAY_DENIED
  // An IP literal (RFC 5321 §4.1.3) is never one of our domains.
  if (domain.startsWith('[') || !/^[a-z0-9.-]+$/.test(domain) || domain.includes('..')) throw RELAY_DENIED
  if (!(SAFE_LOCAL.test(local) || SRS_LOCAL.test(local)) || local.includes('..') || local.startsWith('.') || local.endsWith('.'))
    throw new SmtpError(553, '1.3', 'Bad recipient address syntax')
  return { local, domain, address: `${local}@${domain}` }
}
