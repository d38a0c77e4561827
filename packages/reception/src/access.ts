// Postfix's access(5) tables, so that an administrator brings the ones they have: in CONFIG_DIR,
// `client_access` (the client's address or network), `sender_access` (MAIL FROM) and
// `recipient_access` (RCPT TO), one `KEY ACTION` a line, re-read when they change. Asked at
// each RCPT in that order, as Postfix's check_client_access, check_sender_access and
// check_recipient_access; the first table whose key matches decides:
// - `OK`: no SMTP_HELO_CHECK, DNS blocklist, greylisting or UNKNOWN_SENDER_DOMAIN for this
//   mail. Never relay: a recipient must still be ours (Postfix's OK before
//   reject_unauth_destination would open a relay; here relaying is decided apart, by
//   TRUSTED_NETWORKS alone).
// - `REJECT [text]` (554 5.7.1), `DEFER [text]` (450 4.7.1), `4NN|5NN [x.y.z] text`: refused with
//   Postfix's reply, `<sender@x>: Sender address rejected: text`.
// - `DUNNO`: this key decides nothing, and the lookup stops there (an exception to a wider key).
// Actions Facteur does not have (HOLD, DISCARD, REDIRECT, FILTER, restriction names...) are
// logged with their file and line, and that line is ignored.
// Submission asks the sender table at MAIL and the recipient table at RCPT, each alone, for their
// refusals (an account that may not send, or not receive, as docker-mailserver's `setup email
// restrict`); OK and DUNNO decide nothing there, and the client table is not asked (users
// authenticate from anywhere).
import path from 'node:path'
import { BlockList, isIP } from 'node:net'
import { tableLines, watchedFiles } from '@facteur/files'
import type { Logger } from '@facteur/logging'
import { SmtpError } from '@facteur/smtp-error'

export type AccessAction =
  { kind: 'ok' } | { kind: 'dunno' } | { kind: 'refuse'; code: number; enhanced: `${number}.${number}`; text: string }

/** A table's keys: exact ones in a map; client networks (CIDR, our addition) in file order. */
export type AccessTable = { keys: Map<string, AccessAction>; networks: { list: BlockList; action: AccessAction }[] }

type Kind = 'client' | 'sender' | 'recipient'

/** What the tables say of one recipient: 'ok', a refusal, or null (nothing matched). */
export type AccessDecision = 'ok' | SmtpError | null

const ACCESS_FILES: Record<Kind, string> = {
  client: 'client_access',
  sender: 'sender_access',
  recipient: 'recipient_access',
}

const WHAT: Record<Kind, string> = { client: 'Client host', sender: 'Sender address', recipient: 'Recipient address' }

export type Access = ReturnType<typeof openAccess>

export function openAccess(opts: { configDir: string; delimiter: string; logger: Logger }) {
  const tables: Record<Kind, AccessTable> = { client: emptyTable(), sender: emptyTable(), recipient: emptyTable() }
  const kinds = Object.keys(ACCESS_FILES) as Kind[]
  const files = kinds.map((k) => path.join(opts.configDir, ACCESS_FILES[k]))
  const refresh = watchedFiles(files, (file, text) => {
    const kind = kinds[files.indexOf(file)]
    const { table, problems } = parseAccess(text, kind)
    tables[kind] = table
    for (const p of problems) opts.logger.warn('access table line ignored', { file, line: p.line, reason: p.reason })
  })

  const decision = (kind: Kind, name: string, action: AccessAction): AccessDecision => {
    if (action.kind === 'ok') return 'ok'
    if (action.kind === 'dunno') return null
    // Postfix's form; the null sender is shown `<>`.
    return new SmtpError(action.code, action.enhanced, `<${name}>: ${WHAT[kind]} rejected: ${action.text}`)
  }

  return {
    refresh,
    /** Submission's MAIL: the sender table alone (after refresh()). */
    sender: (sender: string): AccessDecision => {
      const from = lookupAddress(tables.sender, sender, opts.delimiter)
      return from ? decision('sender', sender, from) : null
    },
    /** Submission's RCPT: the recipient table alone. */
    recipient: (recipient: string): AccessDecision => {
      const to = lookupAddress(tables.recipient, recipient, opts.delimiter)
      return to ? decision('recipient', recipient, to) : null
    },
    /** Client, then sender, then recipient (after refresh()); the first that matches decides. */
    decide(ip: string, sender: string, recipient: string | null): AccessDecision {
      // DUNNO ends one table's lookup, not the others'.
      const client = lookupClient(tables.client, ip)
      const byClient = client ? decision('client', `unknown[${ip}]`, client) : null
      if (byClient) return byClient
      const from = lookupAddress(tables.sender, sender, opts.delimiter)
      const bySender = from ? decision('sender', sender, from) : null
      if (bySender || recipient === null) return bySender
      const to = lookupAddress(tables.recipient, recipient, opts.delimiter)
      return to ? decision('recipient', recipient, to) : null
    },
  }
}

function emptyTable(): AccessTable {
  return { keys: new Map(), networks: [] }
}

/**
 * One table's text, in Postfix's source format for postmap: `KEY ACTION`, keys folded to lower
 * case, `#` comments at the start of a line, a line that starts with white space continuing the
 * one before. Lines it cannot use come back as problems (1-based line numbers).
 */
export function parseAccess(text: string, kind: Kind): { table: AccessTable; problems: { line: number; reason: string }[] } {
  const table = emptyTable()
  const problems: { line: number; reason: string }[] = []
  for (const { line, text: entry } of tableLines(text)) {
    const m = /^(\S+)\s+(\S.*)$/.exec(entry)
    if (!m) {
      problems.push({ line, reason: `"${entry}" has a key and no action` })
      continue
    }
    const key = m[1].toLowerCase().replace(/(?<=[a-z0-9])\.$/, '')
    const action = parseAction(m[2])
    if (typeof action === 'string') {
      problems.push({ line, reason: action })
      continue
    }
    const bad = kind === 'client' ? addClientKey(table, key, action) : addressKeyProblem(key, kind)
    if (bad) problems.push({ line, reason: bad })
    else if (kind !== 'client' && !table.keys.has(key)) table.keys.set(key, action)
  }
  return { table, problems }
}

/** An action, or why it is not one Facteur has. */
function parseAction(text: string): AccessAction | string {
  const [word] = text.split(/\s/, 1)
  const rest = text.slice(word.length).trim()
  const upper = word.toUpperCase()
  if (upper === 'OK' || (/^\d+$/.test(word) && !/^[45]\d\d$/.test(word))) return rest ? `OK takes no text: "${text}"` : { kind: 'ok' }
  if (upper === 'DUNNO') return rest ? `DUNNO takes no text: "${text}"` : { kind: 'dunno' }
  // Postfix's access_map_reject_code and access_map_defer_code, and its default text.
  if (upper === 'REJECT') return { kind: 'refuse', code: 554, enhanced: '7.1', text: rest || 'Access denied' }
  if (upper === 'DEFER') return { kind: 'refuse', code: 450, enhanced: '7.1', text: rest || 'Access denied' }
  if (/^[45]\d\d$/.test(word)) {
    // RFC 3463 §2: an enhanced code at the start of the text, its class made the reply's.
    const dsn = /^[245]\.(\d{1,3}\.\d{1,3})(?:\s+|$)/.exec(rest)
    return {
      kind: 'refuse',
      code: Number(word),
      enhanced: (dsn ? dsn[1] : '7.1') as `${number}.${number}`,
      text: (dsn ? rest.slice(dsn[0].length) : rest) || 'Access denied',
    }
  }
  return `"${word}" is not an action Facteur has (OK, DUNNO, REJECT, DEFER, 4NN text, 5NN text)`
}

/** Client keys: an address, an IPv4 network by its first octets (`192.168.1`), or a CIDR network. */
function addClientKey(table: AccessTable, key: string, action: AccessAction): string | null {
  if (isIP(key) === 4 || /^\d{1,3}(\.\d{1,3}){0,2}$/.test(key)) {
    if (key.split('.').some((o) => Number(o) > 255)) return `"${key}" is not an IPv4 address or network`
    if (!table.keys.has(key)) table.keys.set(key, action)
    return null
  }
  if (isIP(key) === 6) {
    const k = canonical(key)
    if (!table.keys.has(k)) table.keys.set(k, action)
    return null
  }
  const [addr, bits] = key.split('/')
  const family = isIP(addr)
  if (family && bits !== undefined && /^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)) {
    const list = new BlockList()
    list.addSubnet(addr, Number(bits), family === 4 ? 'ipv4' : 'ipv6')
    table.networks.push({ list, action })
    return null
  }
  return `"${key}": client keys are addresses and networks (192.0.2.1, 192.0.2, 192.0.2.0/24, 2001:db8::/32); client names are not looked up`
}

function addressKeyProblem(key: string, kind: Kind): string | null {
  if (key === '<>') return kind === 'sender' ? null : '"<>" (the null sender) is a sender key'
  // user@domain, domain, .domain (its subdomains), user@ (that name in any domain)
  if (/^[^@\s]+@[^@\s]*$/.test(key) || /^\.?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/.test(key) || /^\[[0-9a-f.:]+\]$/.test(key)) return null
  return `"${key}" is not an address key (user@domain, domain, .domain, user@${kind === 'sender' ? ', <>' : ''})`
}

/** An IPv6 address as Node writes a peer's (RFC 5952: lower case, longest run of zeros as ::). */
function canonical(ip6: string): string {
  return new URL(`http://[${ip6}]/`).hostname.slice(1, -1)
}

/** Postfix's client lookup order: the address, its IPv4 networks by octets, then the CIDR keys in file order. */
export function lookupClient(table: AccessTable, ip: string): AccessAction | undefined {
  if (!table.keys.size && !table.networks.length) return undefined
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  const addr = mapped ? mapped[1] : ip
  const family = isIP(addr)
  if (family === 4) {
    const octets = addr.split('.')
    for (let n = 4; n >= 1; n--) {
      const hit = table.keys.get(octets.slice(0, n).join('.'))
      if (hit) return hit
    }
  } else if (family === 6) {
    const hit = table.keys.get(canonical(addr))
    if (hit) return hit
  } else return undefined
  for (const n of table.networks) if (n.list.check(addr, family === 4 ? 'ipv4' : 'ipv6')) return n.action
  return undefined
}

/**
 * Postfix's address lookup order (access(5), with parent_domain_matches_subdomains): user@domain
 * (with its extension, then without), the domain, each parent domain as `.parent` then `parent`,
 * then user@ (with, then without the extension). The null sender is `<>`.
 */
export function lookupAddress(table: AccessTable, address: string, delimiter: string): AccessAction | undefined {
  if (!table.keys.size) return undefined
  if (address === '') return table.keys.get('<>')
  const lower = address.toLowerCase()
  const at = lower.lastIndexOf('@')
  const local = at < 0 ? lower : lower.slice(0, at)
  const domain = at < 0 ? '' : lower.slice(at + 1).replace(/\.$/, '')
  const cut = delimiter ? local.indexOf(delimiter) : -1
  const base = cut > 0 ? local.slice(0, cut) : null
  const keys = [`${local}@${domain}`, ...(base ? [`${base}@${domain}`] : [])]
  if (domain) {
    keys.push(domain)
    const labels = domain.split('.')
    for (let i = 1; i < labels.length; i++) {
      const parent = labels.slice(i).join('.')
      keys.push(`.${parent}`, parent)
    }
  }
  keys.push(`${local}@`, ...(base ? [`${base}@`] : []))
  for (const k of keys) {
    const hit = table.keys.get(k)
    if (hit) return hit
  }
  return undefined
}
