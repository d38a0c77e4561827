// The live user and alias tables, and recipient expansion (aliases, sub-addresses, postmaster).
import path from 'node:path'
import { watchedFiles } from '@facteur/files'
import { parseUsers, type UserEntry } from './users-file.js'
import { parseAliases, type AliasTable } from './aliases-file.js'
import { FULL_MAILBOXES_FILE, parseFullMailboxes } from './full-mailboxes.js'
import { normalizeAddress, splitAddress } from './address.js'
import { verifyPassword } from './password.js'

/** Where one recipient's copy goes: local mailboxes (user addresses) and external addresses. */
export type Expansion = { mailboxes: string[]; external: string[]; loop: boolean }

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
   * name exists. `user+tag@d` is tried whole first, then as `user@d` (RFC 5233 sub-addressing).
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
}): Accounts {
  const usersFile = path.join(opts.configDir, 'users')
  const aliasesFile = path.join(opts.configDir, 'aliases')
  const fullFile = opts.spoolDir ? path.join(opts.spoolDir, FULL_MAILBOXES_FILE) : null
  const local = new Set(opts.localDomains)
  let users = new Map<string, UserEntry>()
  let aliases: AliasTable = new Map()
  let full = new Set<string>()
  const refresh = watchedFiles([usersFile, aliasesFile, ...(fullFile ? [fullFile] : [])], (file, text) => {
    if (file === usersFile) users = parseUsers(text)
    else if (file === aliasesFile) aliases = parseAliases(text)
    else full = new Set(parseFullMailboxes(text))
  })

  /** The name as the tables know it, with the sub-address removed if only the base exists. */
  const known = (address: string): string | null => {
    const a = normalizeAddress(address)
    if (users.has(a) || aliases.has(a)) return a
    const parts = splitAddress(a)
    if (parts && opts.delimiter) {
      const i = parts.local.indexOf(opts.delimiter)
      if (i > 0) {
        const base = `${parts.local.slice(0, i)}@${parts.domain}`
        if (users.has(base) || aliases.has(base)) return base
      }
    }
    return null
  }

  const postmaster = normalizeAddress(opts.postmaster)
  const isLocal = (address: string): boolean => local.has(splitAddress(address)?.domain ?? '')

  function expandInto(address: string, out: { mailboxes: Set<string>; external: Set<string>; loop: boolean }, trail: string[]): void {
    if (!isLocal(address)) {
      out.external.add(address)
      return
    }
    const name = known(address) ?? postmasterOf(address)
    if (!name) return // an alias pointing at nobody: that copy goes nowhere
    if (!isLocal(name)) {
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
      for (const t of targets) expandInto(t, out, [...trail, name])
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
      const start = known(address) ?? postmasterOf(address)
      if (!start) return null
      const out = { mailboxes: new Set<string>(), external: new Set<string>(), loop: false }
      expandInto(start, out, [])
      return { mailboxes: [...out.mailboxes], external: [...out.external], loop: out.loop }
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
