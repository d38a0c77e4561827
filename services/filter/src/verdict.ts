// The policy: from what the engines found to one action and the header fields to prepend.
// Refusals come first (a virus, a banned attachment, DMARC p=reject when enforced, SPF fail when
// so configured, a spam score at SPAM_REJECT_SCORE or rspamd's reject), then an engine that could
// not answer (FILTER_FAILURE), then rspamd's soft reject, then junk, then tag.
import type { FilterConfig } from '@facteur/config'
import type { AuthCheck, FilterEnvelope, SpamCheck, Verdict, VirusCheck } from '@facteur/filter-client'
import type { AttachmentCheck } from './attachments.js'

export type Findings = {
  virus: VirusCheck
  spam: SpamCheck
  auth: { check: AuthCheck; header: string; dmarcPolicy?: 'reject' | 'quarantine' }
  /** Attachment names with a FILTER_BANNED_EXTENSIONS extension, or why none could be looked at. */
  attachments?: AttachmentCheck
}

type Policy = Pick<FilterConfig, 'failure' | 'dmarcEnforce' | 'spfFail'> & {
  spam: Pick<FilterConfig['spam'], 'tagScore' | 'junkScore' | 'rejectScore' | 'outbound'>
}

/** Local parts that must always reach a person (RFC 5321 §4.5.1, RFC 2142 §2): never refused as spam. */
const ROLE_ACCOUNTS = new Set(['postmaster', 'abuse'])

export function decide(envelope: FilterEnvelope, found: Findings, policy: Policy, hostname: string): Verdict {
  const outbound = envelope.direction === 'outbound'
  const roleOnly = envelope.recipients.every((r) => ROLE_ACCOUNTS.has(r.slice(0, r.lastIndexOf('@')).toLowerCase()))
  const { virus, spam, auth } = found
  const authCheck = auth.check
  const attachments = found.attachments ?? { banned: [] }
  const banned = 'banned' in attachments ? attachments.banned : []
  const checks: Verdict['checks'] = { virus, spam, auth: authCheck, ...(banned.length ? { banned } : {}) }
  const forged = auth.check.forged
  const removeHeaders: Verdict['removeHeaders'] = forged ? [{ name: 'Authentication-Results', authservId: hostname }] : []
  const refuse = (code: number, enhanced: `${number}.${number}`, text: string, action: 'reject' | 'tempfail' = 'reject'): Verdict => ({
    action,
    headers: '',
    code,
    enhanced,
    text,
    removeHeaders,
    checks,
  })

  // RFC 3463 §3.8 X.7.1: delivery not authorized, message refused.
  if (virus.status === 'infected') return refuse(554, '7.1', `Virus found: ${virus.signatures.join(', ')}`)
  // Amavis's BANNED: in both directions, to every recipient (role accounts too).
  if (banned.length) return refuse(554, '7.1', `Attachment refused: ${quotedNames(banned)} (files of that type are not accepted here)`)
  // RFC 3463 X.6.0, a media error: a MIME bomb whose attachments nobody can list.
  if ('unexamined' in attachments)
    return refuse(554, '6.0', `Message refused: its MIME structure cannot be examined (${attachments.unexamined})`)
  if (auth.dmarcPolicy === 'reject' && policy.dmarcEnforce && authCheck.status === 'checked')
    return refuse(550, '7.1', `Rejected by the DMARC policy of ${authCheck.dmarc.domain ?? 'the sender domain'}`)
  // RFC 7372 §3.2: X.7.23, SPF validation failed.
  if (authCheck.status === 'checked' && authCheck.spf === 'fail' && policy.spfFail === 'reject')
    return refuse(550, '7.23', 'SPF validation failed for the sender domain')

  const scanned = spam.status === 'scanned' ? spam : null
  const spamRefusable = !roleOnly && (!outbound || policy.spam.outbound === 'reject')
  if (scanned && spamRefusable && (scanned.score >= policy.spam.rejectScore || scanned.action === 'reject'))
    return refuse(550, '7.1', 'Message refused as spam')

  const failed: string[] = []
  if (virus.status === 'error') failed.push('virus scanner unavailable')
  if (spam.status === 'error') failed.push('spam scanner unavailable')
  if (failed.length && policy.failure === 'tempfail') return refuse(451, '7.1', 'Message could not be scanned, try again later', 'tempfail')

  // rspamd's greylist and ratelimit modules answer `soft reject` when they defer a message.
  if (scanned?.action === 'soft reject' && spamRefusable) return refuse(451, '7.1', 'Try again later', 'tempfail')

  let action: Verdict['action'] = 'accept'
  const raise = (to: 'tag' | 'junk'): void => {
    if (to === 'junk' && !outbound) action = 'junk'
    else if (action === 'accept') action = 'tag'
  }
  if (scanned) {
    const junkable = !roleOnly && !outbound
    if (scanned.score >= policy.spam.junkScore && junkable) raise('junk')
    else if (scanned.score >= policy.spam.tagScore) raise('tag')
    if (['add header', 'rewrite subject'].includes(scanned.action ?? '')) raise('tag')
  }
  if (auth.dmarcPolicy) raise('junk')
  if (authCheck.status === 'checked' && authCheck.spf === 'fail') raise(policy.spfFail === 'junk' ? 'junk' : 'tag')

  let headers = auth.header
  if (scanned) headers += spamHeaders(scanned, policy.spam.tagScore)
  if (failed.length) headers += `X-Facteur-Filter: not scanned (${failed.join(', ')})\r\n`
  return { action, headers, removeHeaders, checks }
}

/** The fields SpamAssassin made familiar, so users' Sieve rules and clients keep working. */
function spamHeaders(spam: Extract<SpamCheck, { status: 'scanned' }>, required: number): string {
  const isSpam = spam.score >= required
  const score = spam.score.toFixed(1)
  const tests = spam.rules.length ? spam.rules.join(',') : 'none'
  const status = `${isSpam ? 'Yes' : 'No'}, score=${score} required=${required.toFixed(1)} engine=${spam.engine}\r\n\ttests=${fold(tests)}`
  return (
    (isSpam ? 'X-Spam-Flag: YES\r\n' : '') +
    `X-Spam-Score: ${score}\r\n` +
    `X-Spam-Level: ${'*'.repeat(Math.max(0, Math.min(50, Math.floor(spam.score))))}\r\n` +
    `X-Spam-Status: ${status}\r\n`
  )
}

/** Folds a comma-separated list onto continuation lines of at most ~76 characters. */
function fold(list: string): string {
  const out: string[] = []
  let line = ''
  for (const item of list.split(',')) {
    if (line && line.length + item.length + 1 > 70) {
      out.push(line + ',')
      line = item
    } else line = line ? `${line},${item}` : item
  }
  out.push(line)
  return out.join('\r\n\t')
}

/** Names as a reply may carry them: printable ASCII (RFC 5321 §4.2), quoted, the first three. */
function quotedNames(names: string[]): string {
  const shown = names.slice(0, 3).map(
    (n) =>
      `"${n
        .replace(/[^\x20-\x7e]/g, '?')
        .replace(/"/g, "'")
        .slice(0, 80)}"`,
  )
  return shown.join(', ') + (names.length > 3 ? ` and ${names.length - 3} more` : '')
}
