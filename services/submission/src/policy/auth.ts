// AUTH PLAIN (RFC 4616) and LOGIN against CONFIG_DIR/users, behind the AuthGuard: a banned
// address gets 454 4.7.0 without its password being looked at (so the ban does not become an
// oracle), and every reply for a recently attacked account waits, whether it succeeds or not.
import { setTimeout as sleep } from 'node:timers/promises'
import { SmtpError } from '@facteur/smtp-error'
import { normalizeAddress, type Accounts } from '@facteur/accounts'
import type { AuthGuard } from './auth-guard.js'

export type AuthAttempt = { username: string; authzid?: string; password: string; ip: string }

/** What the log may say about an attempt: never the password, nor a name nobody has. */
export type AuthOutcome = { account: string; known: boolean; banned: boolean; delayMs: number }

/** Resolves with the account's address; rejects with 454 4.7.0 (banned) or 535 5.7.8. */
export async function authenticate(
  attempt: AuthAttempt,
  ctx: { accounts: Accounts; guard: AuthGuard; mailDomain: string; onFailure?: (outcome: AuthOutcome) => void },
): Promise<string> {
  const { accounts, guard } = ctx
  const account = loginName(attempt.username, ctx.mailDomain)
  const end = await guard.admit(attempt.ip, account)
  // RFC 4954 §6: 454 4.7.0 Temporary authentication failure.
  if (!end) {
    ctx.onFailure?.({ account, known: Boolean(accounts.user(account)), banned: true, delayMs: 0 })
    const whose = guard.perAccount(attempt.ip) ? 'for this account from your address' : 'from your address'
    throw new SmtpError(454, '7.0', `Too many failed authentications ${whose}, try again later`)
  }
  try {
    const delayMs = guard.delayFor(account, Date.now())
    const check = async (): Promise<boolean> => {
      // RFC 4616 §2: an authorization identity other than the authentication identity asks to act
      // as somebody else, which nobody may do here.
      if (attempt.authzid && loginName(attempt.authzid, ctx.mailDomain) !== account) return false
      await accounts.refresh()
      return accounts.authenticate(account, attempt.password)
    }
    const [ok] = await Promise.all([check(), sleep(delayMs)])
    if (ok) {
      guard.succeeded(account)
      return account
    }
    const banned = guard.failed(attempt.ip, account, Date.now())
    ctx.onFailure?.({ account, known: Boolean(accounts.user(account)), banned, delayMs })
    // RFC 4954 §6: 535 5.7.8 Authentication credentials invalid.
    throw new SmtpError(535, '7.8', 'Authentication credentials invalid')
  } finally {
    end()
  }
}

/** The account a login names: `alice` alone means alice@MAIL_DOMAIN. */
export function loginName(username: string, mailDomain: string): string {
  const name = username.trim()
  return normalizeAddress(name.includes('@') ? name : `${name}@${mailDomain}`)
}
