// CONFIG_DIR/sender_canonical, Postfix's sender_canonical_maps (canonical(5)): the sender of mail
// our side sends (from TRUSTED_NETWORKS on :25, or submitted by a user) is rewritten, in the
// envelope (MAIL FROM) and in the header fields that name it (From:, Sender:, Resent-From:,
// Resent-Sender:). What it is for: a printer, a NAS or cron on the LAN sending as root@nas.lan,
// an address no receiver accepts, or a login address published under another name. Lines are
// `KEY VALUE`, re-read when the file changes:
//   root@nas.lan     alerts@ours.example    that address
//   @nas.lan         alerts@ours.example    every address of that domain, to one
//   @old.example     @ours.example          every address of that domain, its local part kept
// The address first, then its domain. Mail from elsewhere is never rewritten: a stranger's
// MAIL FROM:<root@nas.lan> stays what it is. Submission checks the sender the user gave (it must
// be theirs), then this rewrites it.
import path from 'node:path'
import { normalizeAddress, splitAddress } from '@facteur/accounts'
import { tableLines, watchedFiles } from '@facteur/files'
import type { Logger } from '@facteur/logging'
import type { HeaderField } from './headers.js'

/** The header fields that name the sender (Postfix's header_sender class, Return-Path aside: we strip it). */
const SENDER_FIELDS = new Set(['from', 'sender', 'resent-from', 'resent-sender'])

export type Canonical = {
  refresh: () => Promise<void>
  /** The address `address` is rewritten to, or null when no line names it. */
  map: (address: string) => string | null
  /** The field with each address the table names rewritten, or undefined when it names none. */
  field: (field: HeaderField) => string | undefined
}

export const SENDER_CANONICAL_FILE = 'sender_canonical'

export function openCanonical(opts: { configDir: string; logger: Logger }): Canonical {
  const file = path.join(opts.configDir, SENDER_CANONICAL_FILE)
  let table = new Map<string, string>()
  const refresh = watchedFiles([file], (_, text) => {
    const parsed = parseCanonical(text)
    table = parsed.table
    for (const p of parsed.problems) opts.logger.warn('sender_canonical line ignored', { file, line: p.line, reason: p.reason })
  })
  const map = (address: string): string | null => {
    if (table.size === 0) return null
    const parts = splitAddress(normalizeAddress(address))
    if (!parts) return null
    const value = table.get(`${parts.local}@${parts.domain}`) ?? table.get(`@${parts.domain}`)
    if (!value) return null
    return value.startsWith('@') ? `${parts.local}${value}` : value
  }
  return {
    refresh,
    map,
    field(field) {
      if (table.size === 0 || !SENDER_FIELDS.has(field.lower)) return undefined
      const colon = field.raw.indexOf(':')
      let changed = false
      // Addresses as they stand in the field: in <...>, or bare between separators (RFC 5322 §3.4).
      const value = field.raw.slice(colon + 1).replace(/(?<=^|[<\s,:;])[^\s<>,;:"()@]+@[A-Za-z0-9.-]+(?=$|[>\s,;])/g, (addr) => {
        const to = map(addr)
        if (!to) return addr
        changed = true
        return to
      })
      return changed ? `${field.raw.slice(0, colon + 1)}${value}\r\n` : undefined
    },
  }
}

/** `KEY VALUE` lines: KEY an address or `@domain`; VALUE an address, or `@domain` (local part kept). */
export function parseCanonical(text: string): { table: Map<string, string>; problems: { line: number; reason: string }[] } {
  const table = new Map<string, string>()
  const problems: { line: number; reason: string }[] = []
  const valid = (x: string): boolean => Boolean(x.startsWith('@') ? splitAddress(`x${x}`) : splitAddress(x))
  for (const { line, text: entry } of tableLines(text)) {
    const m = /^(\S+)\s+(\S+)$/.exec(entry)
    if (!m) {
      problems.push({ line, reason: `"${entry}" is not KEY VALUE` })
      continue
    }
    const key = m[1].startsWith('@') ? m[1].toLowerCase() : normalizeAddress(m[1])
    const value = m[2].startsWith('@') ? m[2].toLowerCase() : normalizeAddress(m[2])
    if (!valid(key)) problems.push({ line, reason: `"${m[1]}" is not an address or @domain` })
    else if (!valid(value)) problems.push({ line, reason: `"${m[2]}" is not an address or @domain` })
    else if (!key.startsWith('@') && value.startsWith('@'))
      problems.push({ line, reason: `an address (${m[1]}) maps to an address, not to ${m[2]}` })
    else if (!table.has(key)) table.set(key, value)
  }
  return { table, problems }
}
