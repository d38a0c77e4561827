// Who the authenticated user may send as (RFC 6409 §6.1: the MSA checks the submitter may use
// the address): their own address, or an address of ours that delivers to them (an alias, a
// sub-address, their name in a domain aliased to theirs; not a domain's catch-all). Applied to
// MAIL FROM and to every address of every From: field.
import addressparser from 'nodemailer/lib/addressparser'
import { SmtpError } from '@facteur/smtp-error'
import { normalizeAddress, splitAddress, type Accounts } from '@facteur/accounts'
import { headerValue, type HeaderField } from '@facteur/reception'

/** True when `address` is the user's own or delivers to the user's mailbox (after `refresh()`). */
export function ownsAddress(address: string, user: string, ctx: { accounts: Accounts; localDomains: readonly string[] }): boolean {
  const a = normalizeAddress(address)
  if (a === user) return true
  const domain = splitAddress(a)?.domain
  if (!domain || !ctx.localDomains.includes(domain)) return false
  // A domain's catch-all (`@domain: user`) does not make every name there the user's to send as.
  const expansion = ctx.accounts.expand(a)
  return Boolean(expansion && !expansion.catchAll && expansion.mailboxes.includes(user))
}

export const SENDER_NOT_OWNED = new SmtpError(553, '7.1', 'Sender address rejected: not owned by the authenticated user')
export const FROM_NOT_OWNED = new SmtpError(553, '7.1', 'From: header address rejected: not owned by the authenticated user')

/**
 * RFC 5322 §3.6.2: From: holds one or more mailboxes; each must be the user's. A message without
 * From: passes (submission adds one, RFC 6409 §8.1); one whose From: names nobody does not.
 */
export function checkFromHeader(fields: HeaderField[], owns: (address: string) => boolean): SmtpError | null {
  for (const field of fields) {
    if (field.lower !== 'from') continue
    const addresses = addressparser(headerValue(field), { flatten: true })
    if (addresses.length === 0 || addresses.some((a) => !a.address || !owns(a.address))) return FROM_NOT_OWNED
  }
  return null
}
