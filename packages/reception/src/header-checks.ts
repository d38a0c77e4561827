// Postfix's header_checks(5), so that an administrator brings the table they have:
// `$CONFIG_DIR/header_checks`, in regexp_table(5) / pcre_table(5) form (`/pattern/flags ACTION
// text`, `!/pattern/` when it does not match), re-read when it changes. Each header field of a
// message received on :25 or by submission is matched, unfolded (RFC 5322 §2.2.3), against the
// patterns in order; the first that matches decides for that field:
// - `REJECT [text]`: 550 5.7.1 (or the enhanced code that starts the text) at the end of DATA;
// - `DISCARD [text]`: 250 to the client, and the message is dropped (logged);
// - `HOLD [text]`: queued on hold (`mailctl queue release ID` lets it go);
// - `WARN [text]`, `INFO [text]`: logged; `IGNORE`: the field is removed;
// - `REPLACE text`, `PREPEND text`: the field is replaced by, or preceded by, the field `text`;
// - `DUNNO` (and `OK`, which Postfix reads as DUNNO): nothing, and the next field.
// REJECT and DISCARD end the inspection, as in Postfix's cleanup. `$1`... in the text are the
// pattern's groups. Matching is case-insensitive unless the flags hold `i`, as in Postfix.
// Actions Facteur does not have (BCC, FILTER, REDIRECT, STRIP, PASS) and `if`/`endif` blocks are
// logged with their line, and that line is ignored. Our Received: field is not in the header then
// (it is added at delivery), nor are the fields submission adds (Date, Message-ID).
// `$CONFIG_DIR/body_checks`, Postfix's body_checks: the same, for each line of the body's first
// 50 KiB (body_checks_size_limit), as sent (MIME parts are not decoded), with the actions that do
// not edit (REJECT, DISCARD, HOLD, WARN, INFO, DUNNO).
import path from 'node:path'
import { parseRegexpLine, substituteGroups, tableLines, watchedFiles } from '@facteur/files'
import type { Logger } from '@facteur/logging'
import { SmtpError } from '@facteur/smtp-error'
import type { HeaderField } from './headers.js'

export type HeaderCheckAction =
  | { kind: 'reject'; enhanced: `${number}.${number}`; text: string }
  | { kind: 'discard' | 'hold' | 'warn' | 'info'; text: string }
  | { kind: 'replace' | 'prepend'; text: string }
  | { kind: 'ignore' | 'dunno' }

export type HeaderRule = { line: number; pattern: RegExp; negate: boolean; action: HeaderCheckAction }

/** What the table decided for one message. */
export type HeaderVerdict = {
  reject: SmtpError | null
  /** DISCARD's or HOLD's text ('' when it has none), when one matched. */
  discard: string | null
  hold: string | null
  /** The replacement of a field (CRLF-terminated lines, '' to remove it). */
  rewrite: Map<HeaderField, string>
  /** Each match, for the log: the rule's line, its action, the field (cut at 200 characters). */
  matches: { line: number; action: HeaderCheckAction['kind']; field: string; text?: string }[]
}

export type HeaderChecks = {
  /** Re-reads the tables when they changed (before each message). */
  refresh: () => Promise<void>
  /** The verdict on a message's fields, or null when header_checks is empty. */
  judge: (fields: HeaderField[]) => HeaderVerdict | null
  /** The verdict on the body's first BODY_CHECKS_LIMIT bytes (latin1), or null when body_checks is empty. */
  judgeBody: (body: string) => HeaderVerdict | null
  /** body_checks has rules: the gate keeps the body's first bytes for it. */
  checksBody: () => boolean
}

export const HEADER_CHECKS_FILE = 'header_checks'
export const BODY_CHECKS_FILE = 'body_checks'
/** Postfix's body_checks_size_limit. */
export const BODY_CHECKS_LIMIT = 51_200

export function openHeaderChecks(opts: { configDir: string; logger: Logger }): HeaderChecks {
  const files = [HEADER_CHECKS_FILE, BODY_CHECKS_FILE].map((f) => path.join(opts.configDir, f))
  let rules: HeaderRule[] = []
  let bodyRules: HeaderRule[] = []
  const refresh = watchedFiles(files, (file, text) => {
    const body = file === files[1]
    const parsed = parseHeaderChecks(text, { body })
    if (body) bodyRules = parsed.rules
    else rules = parsed.rules
    for (const p of parsed.problems)
      opts.logger.warn(`${body ? BODY_CHECKS_FILE : HEADER_CHECKS_FILE} line ignored`, { file, line: p.line, reason: p.reason })
  })
  return {
    refresh,
    judge: (fields) => (rules.length ? judgeHeader(rules, fields) : null),
    judgeBody: (body) => (bodyRules.length ? judgeBody(bodyRules, body) : null),
    checksBody: () => bodyRules.length > 0,
  }
}

/** RFC 5322 §2.2.3: the field as one line (its CRLFs removed, the folding white space kept). */
const unfold = (field: HeaderField): string => field.raw.replace(/\r\n/g, '')

export function judgeHeader(rules: readonly HeaderRule[], fields: readonly HeaderField[]): HeaderVerdict {
  return judgeLines(
    rules,
    fields.map((field) => ({ field, line: unfold(field) })),
  )
}

/** body_checks: each line of the body's sample (its last, cut at the limit, too). */
export function judgeBody(rules: readonly HeaderRule[], body: string): HeaderVerdict {
  return judgeLines(
    rules,
    body.split('\r\n').map((line) => ({ line })),
  )
}

function judgeLines(rules: readonly HeaderRule[], lines: readonly { line: string; field?: HeaderField }[]): HeaderVerdict {
  const verdict: HeaderVerdict = { reject: null, discard: null, hold: null, rewrite: new Map(), matches: [] }
  for (const { field, line } of lines) {
    for (const rule of rules) {
      const m = rule.pattern.exec(line)
      if (!m === !rule.negate) continue
      const action = rule.action
      if (action.kind === 'dunno') break
      const text = 'text' in action ? substituteGroups(action.text, m) : undefined
      const shown = Buffer.from(line.slice(0, 200), 'latin1').toString('utf8')
      verdict.matches.push({ line: rule.line, action: action.kind, field: shown, ...(text !== undefined && { text }) })
      if (action.kind === 'reject') {
        // RFC 5321 §4.2: a reply is printable ASCII; `$1` may bring the client's bytes into it.
        const reply = (text ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 200)
        verdict.reject = new SmtpError(550, action.enhanced, reply || 'Message content rejected')
        return verdict
      }
      if (action.kind === 'discard') {
        verdict.discard = text ?? ''
        return verdict
      }
      if (action.kind === 'hold') verdict.hold ??= text ?? ''
      else if (!field)
        break // body lines are not edited (the table refuses those actions)
      else if (action.kind === 'ignore') verdict.rewrite.set(field, '')
      else if (action.kind === 'replace') verdict.rewrite.set(field, `${text}\r\n`)
      else if (action.kind === 'prepend') verdict.rewrite.set(field, `${text}\r\n${field.raw}\r\n`)
      break
    }
  }
  return verdict
}

const asBytes = (text: string): string => Buffer.from(text, 'utf8').toString('latin1')

/**
 * The table's text: logical lines (a line that starts with white space continues the one before,
 * `#` comments), each `[!]/pattern/flags ACTION [text]` (parseRegexpLine). Lines it cannot use come
 * back as problems (1-based line numbers).
 */
export function parseHeaderChecks(
  text: string,
  opts: { body?: boolean } = {},
): { rules: HeaderRule[]; problems: { line: number; reason: string }[] } {
  const rules: HeaderRule[] = []
  const problems: { line: number; reason: string }[] = []
  for (const { line, text: entry } of tableLines(text)) {
    const rule = parseRule(entry)
    if (opts.body && typeof rule !== 'string' && ['ignore', 'replace', 'prepend'].includes(rule.action.kind))
      problems.push({
        line,
        reason: `${rule.action.kind.toUpperCase()} edits header fields: body_checks takes REJECT, DISCARD, HOLD, WARN, INFO, DUNNO`,
      })
    else if (typeof rule === 'string') problems.push({ line, reason: rule })
    else rules.push({ line, ...rule })
  }
  return { rules, problems }
}

function parseRule(entry: string): Omit<HeaderRule, 'line'> | string {
  // The header is matched as bytes (latin1 strings, as the gate holds it), so is the pattern: a
  // UTF-8 word in it matches that word in a UTF-8 header.
  const line = parseRegexpLine(entry, asBytes)
  if (typeof line === 'string') return line
  const action = parseAction(line.result)
  return typeof action === 'string' ? action : { pattern: line.pattern, negate: line.negate, action }
}

function parseAction(text: string): HeaderCheckAction | string {
  const [word] = text.split(/\s/, 1)
  const rest = text.slice(word.length).trim()
  const upper = word.toUpperCase()
  switch (upper) {
    case 'REJECT': {
      // RFC 3463 §2: an enhanced code (class 5) at the start of the text is the reply's.
      const dsn = /^5\.(\d{1,3}\.\d{1,3})(?:\s+|$)/.exec(rest)
      return { kind: 'reject', enhanced: (dsn ? dsn[1] : '7.1') as `${number}.${number}`, text: dsn ? rest.slice(dsn[0].length) : rest }
    }
    case 'DISCARD':
    case 'HOLD':
    case 'WARN':
    case 'INFO':
      return { kind: upper.toLowerCase() as 'discard' | 'hold' | 'warn' | 'info', text: rest }
    case 'REPLACE':
    case 'PREPEND':
      if (!/^[!-9;-~]+:/.test(rest)) return `${upper} needs a header field ("Name: value"), not "${rest}"`
      return { kind: upper === 'REPLACE' ? 'replace' : 'prepend', text: asBytes(rest) }
    case 'IGNORE':
    case 'DUNNO':
    case 'OK':
      if (rest) return `${upper} takes no text: "${text}"`
      return { kind: upper === 'IGNORE' ? 'ignore' : 'dunno' }
    default:
      return `"${word}" is not an action Facteur has (REJECT, DISCARD, HOLD, WARN, INFO, IGNORE, REPLACE, PREPEND, DUNNO)`
  }
}
