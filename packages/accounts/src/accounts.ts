// The live user and alias tables, and recipient expansion (aliases, sub-addresses, postmaster,
// and as in Postfix's virtual(5) a domain's `@domain` entry: a catch-all for the names nobody has
// there, whose `@otherdomain` targets keep the local part, making the domain an alias of another).
// Then CONFIG_DIR/aliases_regexp, Postfix's regexp virtual_alias_maps as docker-mailserver's
// postfix-regexp.cf: `/pattern/ target[, target...]`, `$1` the pattern's groups, asked after
// everything above (as docker-mailserver orders its maps), for a name of one of our domains.
import path from 'node:path'
import { parseRegexpLine, substituteGroups, tableLines, watchedFiles, type RegexpLine } from '@facteur/files'
import { parseUsers, type UserEntry } from './users-file.js'
import { parseAliases, type AliasTable } from './aliases-file.js'
import { FULL_MAILBOXES_FILE, parseFullMailboxes } from './full-mailboxes.js'
import { normalizeAddress, splitAddress } from './address.js'
import { verifyPassword } from './password.js'

/**
 * Where one recipient's copy goes: local mailboxes (user addresses) and external addresses.
 * `catchAll`: a domain's catch-all (`@domain: target`) or a regexp alias took it, nobody has that name.
 */
export type Expansion = { mailboxes: string[]; external: string[]; loop: boolean; catchAll?: true }

export type Accounts = {
  readonly usersFile: string
  readonly aliasesFile: string
  /** Re-reads the files if they changed (content, or replaced by a rename). */
  refresh(): Promise<void>
  user(address: string): UserEntry | undefined
  /** The mailbox is over its quota, as delivery last listed it (after `refresh()`; with spoolDir only). */
  full(address: string): boolean
  aliases(address: string): string[] | undefined
  /**
   * Expands a recipient in a local domain, after `refresh()`. Returns null when nobody by that
   * name exists. `user+tag@d` is tried whole first, then as `user@d` (RFC 5233 sub-addressing),
   * then the domain's `@d` entry: a name a user or an alias has is never the catch-all's.
   */
  expand(address: string): Expansion | null
  authenticate(address: string, password: string): Promise<boolean>
  allUsers(): UserEntry[]
  allAliases(): AliasTable
}

const MAX_DEPTH = 10

/** A bcrypt hash (the cost mailctl gives new passwords) of a random password nobody kept. */
const UNKNOWN_USER_HASH = '{BLF-CRYPT}$2b$10$Y65oCY/SMgy.Hzo12.fYW.8ACHAy9/eVT/lkENRPnkPaD30H6vOZ2'

export function openAccounts(opts: {
  configDir: string
  localDomains: readonly string[]
  postmaster: string
  delimiter: string
  /** Where delivery lists the mailboxes over their quota (the listeners'; delivery keeps its own list). */
  spoolDir?: string
  /** A line of aliases_regexp that cannot be used (it is skipped): for the log. */
  onProblem?: (problem: { file: string; line: number; reason: string }) => void
}): Accounts {
  const usersFile = path.join(opts.configDir, 'users')
  const aliasesFile = path.join(opts.configDir, 'aliases')
  const fullFile = opts.spoolDir ? path.join(opts.spoolDir, FULL_MAILBOXES_FILE) : null
  const local = new Set(opts.localDomains)
  let users = new Map<string, UserEntry>()
  let aliases: AliasTable = new Map()
  let full = new Set<string>()
  const regexpFile = path.join(opts.configDir, REGEXP_ALIASES_FILE)
  let regexps: RegexpLine[] = []
  const refresh = watchedFiles([usersFile, aliasesFile, regexpFile, ...(fullFile ? [fullFile] : [])], (file, text) => {
    if (file === usersFile) users = parseUsers(text)
    else if (file === aliasesFile) aliases = parseAliases(text)
    else if (file === regexpFile) {
      const parsed = parseRegexpAliases(text)
      regexps = parsed.rules
      for (const p of parsed.problems) opts.onProblem?.({ file, ...p })
    } else full = new Set(parseFullMailboxes(text))
  })

  /** The targets of the first aliases_regexp line that matches the (lower-case) address; null when none. */
  const byPattern = (address: string): string[] | null => {
    for (const rule of regexps) {
      const m = rule.pattern.exec(address)
      if (!m === !rule.negate) continue
      const targets = splitTargets(substituteGroups(rule.result, m)).filter((t) => splitAddress(t))
      return targets.length ? targets : null
    }
    return null
  }

  /**
   * The name as the tables know it: the address, else without its sub-address, else (postmaster
   * apart) its domain's `@domain` entry.
   */
  const known = (address: string): string | null => {
    const a = normalizeAddress(address)
    if (users.has(a) || aliases.has(a)) return a
    const parts = splitAddress(a)
    if (!parts) return null
    if (opts.delimiter) {
      const i = parts.local.indexOf(opts.delimiter)
      if (i > 0) {
        const base = `${parts.local.slice(0, i)}@${parts.domain}`
        if (users.has(base) || aliases.has(base)) return base
      }
    }
    const domainEntry = `@${parts.domain}`
    return parts.local !== 'postmaster' && aliases.has(domainEntry) ? domainEntry : null
  }

  const postmaster = normalizeAddress(opts.postmaster)
  /** The domain of an address or of an `@domain` entry. */
  const domainOf = (name: string): string => name.slice(name.lastIndexOf('@') + 1)
  const isLocal = (address: string): boolean => local.has(splitAddress(address)?.domain ?? '')

  type Out = { mailboxes: Set<string>; external: Set<string>; loop: boolean; catchAll: boolean }
  function expandInto(address: string, out: Out, trail: string[]): void {
    if (!isLocal(address)) {
      out.external.add(address)
      return
    }
    const name = known(address) ?? postmasterOf(address)
    if (!name) {
      // aliases_regexp, last; an alias pointing at nobody: that copy goes nowhere.
      const normalized = normalizeAddress(address)
      const targets = byPattern(normalized)
      const key = `regexp:${normalized}`
      if (!targets) return
      if (trail.includes(key) || trail.length >= MAX_DEPTH) {
        out.loop = true
        return
      }
      out.catchAll = true
      for (const t of targets) expandInto(t, out, [...trail, key])
      return
    }
    if (!local.has(domainOf(name))) {
      out.external.add(name)
      return
    }
    if (trail.includes(name) || trail.length >= MAX_DEPTH) {
      // A name met again is a cycle; a user's own mailbox still counts ("a: a, b" keeps a copy).
      if (users.has(name)) out.mailboxes.add(name)
      else out.loop = true
      return
    }
    const targets = aliases.get(name)
    if (targets) {
      const normalized = normalizeAddress(address)
      const localPart = normalized.slice(0, normalized.lastIndexOf('@'))
      for (const t of targets) {
        // virtual(5): an `@otherdomain` result keeps the local part (user@d -> user@otherdomain).
        if (t.startsWith('@')) expandInto(`${localPart}${t}`, out, [...trail, name])
        else {
          if (name.startsWith('@')) out.catchAll = true
          expandInto(t, out, [...trail, name])
        }
      }
      return
    }
    // The postmaster with neither user nor alias still has a mailbox of that name.
    if (users.has(name) || name === postmaster) out.mailboxes.add(name)
  }

  /** RFC 5321 §4.5.1: postmaster@ every local domain exists, even with no user or alias. */
  function postmasterOf(address: string): string | null {
    const parts = splitAddress(normalizeAddress(address))
    return parts && parts.local === 'postmaster' ? postmaster : null
  }

  return {
    usersFile,
    aliasesFile,
    refresh,
    user: (address) => users.get(normalizeAddress(address)),
    full: (address) => full.size > 0 && full.has(normalizeAddress(address)),
    aliases: (address) => aliases.get(normalizeAddress(address)),
    expand(address) {
      const start = known(address) ?? postmasterOf(address) ?? byPattern(normalizeAddress(address))
      if (!start) return null
      const out: Out = { mailboxes: new Set<string>(), external: new Set<string>(), loop: false, catchAll: false }
      expandInto(address, out, [])
      return {
        mailboxes: [...out.mailboxes],
        external: [...out.external],
        loop: out.loop,
        ...(out.catchAll && { catchAll: true as const }),
      }
    },
    async authenticate(address, password) {
      const u = users.get(normalizeAddress(address))
      // An unknown name costs the comparison a user's password does: the reply's time does not
      // tell which names exist.
      const ok = await verifyPassword(u?.password ?? UNKNOWN_USER_HASH, password)
      return ok && u !== undefined
    },
    allUsers: () => [...users.values()],
    allAliases: () => new Map(aliases),
  }
}

export const REGEXP_ALIASES_FILE = 'aliases_regexp'

const splitTargets = (text: string): string[] =>
  text
    .split(/[,\s]+/)
    .map((t) => normalizeAddress(t))
    .filter(Boolean)

/** aliases_regexp: `/pattern/flags target[, target...]` lines (parseRegexpLine); the rest, as problems. */
export function parseRegexpAliases(text: string): { rules: RegexpLine[]; problems: { line: number; reason: string }[] } {
  const rules: RegexpLine[] = []
  const problems: { line: number; reason: string }[] = []
  for (const { line, text: entry } of tableLines(text)) {
    const rule = parseRegexpLine(entry)
    if (typeof rule === 'string') problems.push({ line, reason: rule })
    // A target with groups is checked once filled in; one without must be an address already.
    else if (splitTargets(rule.result).some((t) => !t.includes('$') && !splitAddress(t)))
      problems.push({ line, reason: `"${rule.result}" is not a list of addresses` })
    else rules.push(rule)
  }
  return { rules, problems }
}
