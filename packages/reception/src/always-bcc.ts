// Automatic copies, as Postfix's always_bcc, sender_bcc_maps and recipient_bcc_maps: every message
// the MX or submission accepts also goes to ALWAYS_BCC (an archive), to the address
// CONFIG_DIR/sender_bcc names for its sender, and to those CONFIG_DIR/recipient_bcc names for its
// recipients (as the client named them at RCPT). The tables are Postfix's source format, `KEY
// ADDRESS` a line, KEY an address (also found without its +extension) or `@domain`; re-read when
// they change. A copy is seen by nobody else: it is in the envelope only, never in a header, and
// not in the Received: field's "for". It asks for no notice (RFC 3461 §4.1 NOTIFY=NEVER, as Postfix
// adds it): a failed copy is the log's business, never the sender's. An address of ours is
// expanded as at RCPT (an alias to a mailbox, not the catch-all); one nobody has here is logged and
// the message goes on without that copy: a typo never refuses mail.
import path from 'node:path'
import { normalizeAddress, splitAddress, type Accounts } from '@facteur/accounts'
import type { Config } from '@facteur/config'
import { tableLines, watchedFiles } from '@facteur/files'
import type { Logger } from '@facteur/logging'
import type { RecipientState } from '@facteur/spool'
import { expandLocalRecipient } from './local-recipient.js'

/** The copies one message gets, from its sender ('' for the null sender) and its recipients as named at RCPT. */
export type AlwaysBcc = (sender: string, recipients: readonly string[]) => Promise<RecipientState[]>

export const BCC_FILES = { sender: 'sender_bcc', recipient: 'recipient_bcc' } as const

export function alwaysBcc(config: Config, accounts: Accounts, logger: Logger): AlwaysBcc {
  const tables = { sender: new Map<string, string>(), recipient: new Map<string, string>() }
  const kinds = ['sender', 'recipient'] as const
  const files = kinds.map((k) => path.join(config.configDir, BCC_FILES[k]))
  const refresh = watchedFiles(files, (file, text) => {
    const { table, problems } = parseBccTable(text)
    tables[kinds[files.indexOf(file)]] = table
    for (const p of problems) logger.warn('bcc table line ignored', { file, line: p.line, reason: p.reason })
  })
  const lookup = (table: Map<string, string>, address: string): string | undefined => {
    const parts = splitAddress(normalizeAddress(address))
    if (!parts || table.size === 0) return undefined
    const { local, domain } = parts
    const bare = config.recipientDelimiter ? local.split(config.recipientDelimiter)[0] : local
    return table.get(`${local}@${domain}`) ?? table.get(`${bare}@${domain}`) ?? table.get(`@${domain}`)
  }
  const expand = async (bcc: string, why: string): Promise<RecipientState[]> => {
    let targets: string[]
    try {
      const local = config.localDomains.includes(splitAddress(bcc)?.domain ?? '')
      targets = local ? await expandLocalRecipient(bcc, { accounts, unknownRecipient: { kind: 'reject' } }) : [bcc]
    } catch (err) {
      logger.warn(`${why} names nobody here: the message is not copied`, { address: bcc, err: (err as Error).message })
      return []
    }
    return targets.map((address) => ({ address, original: bcc, status: 'pending' as const, attempts: 0, notify: ['NEVER'] }))
  }

  return async (sender, recipients) => {
    await refresh().catch((err: unknown) => logger.warn('bcc tables unreadable', { err: String(err) }))
    const wanted = new Map<string, string>()
    if (config.alwaysBcc) wanted.set(config.alwaysBcc, 'ALWAYS_BCC')
    const bySender = sender ? lookup(tables.sender, sender) : undefined
    if (bySender && !wanted.has(bySender)) wanted.set(bySender, BCC_FILES.sender)
    for (const r of recipients) {
      const byRecipient = lookup(tables.recipient, r)
      if (byRecipient && !wanted.has(byRecipient)) wanted.set(byRecipient, BCC_FILES.recipient)
    }
    const copies = new Map<string, RecipientState>()
    for (const [bcc, why] of wanted) for (const c of await expand(bcc, why)) if (!copies.has(c.address)) copies.set(c.address, c)
    return [...copies.values()]
  }
}

/** `KEY ADDRESS` lines: KEY an address or `@domain`, ADDRESS one address (Postfix takes one). */
export function parseBccTable(text: string): { table: Map<string, string>; problems: { line: number; reason: string }[] } {
  const table = new Map<string, string>()
  const problems: { line: number; reason: string }[] = []
  for (const { line, text: entry } of tableLines(text)) {
    const m = /^(\S+)\s+(\S+)$/.exec(entry)
    const key = m?.[1].toLowerCase() ?? ''
    const target = m ? normalizeAddress(m[2]) : ''
    if (!m) problems.push({ line, reason: `"${entry}" is not KEY ADDRESS (one address)` })
    else if (!(key.startsWith('@') ? splitAddress(`x${key}`) : splitAddress(normalizeAddress(key))))
      problems.push({ line, reason: `"${m[1]}" is not an address or @domain` })
    else if (!splitAddress(target)) problems.push({ line, reason: `"${m[2]}" is not an address` })
    else if (!table.has(key)) table.set(key.startsWith('@') ? key : normalizeAddress(key), target)
  }
  return { table, problems }
}
