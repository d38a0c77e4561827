// Mailbox quotas: MAILBOX_QUOTA for everyone, or a user's own from the users file (the extra field
// Dovecot's quota plugin reads, `userdb_quota_rule=*:storage=1G`; 0 is none). A mailbox that has
// reached its quota takes no more copies: each is deferred (452 4.2.2, RFC 3463 "mailbox full")
// and tried again as the queue retries, delivered once the user has made room, bounced if
// MAX_QUEUE_LIFETIME passes first. As Dovecot's quota_grace, the copy that crosses the limit is
// still written. The full mailboxes are listed in SPOOL_DIR/full-mailboxes, where the listeners
// read them to refuse new mail for them at RCPT (552 5.2.2) rather than take it; each listed
// mailbox is measured again every minute, so the list empties as users make room over IMAP.
//
// Usage is the size of the mbox file, or the sum of a Maildir's messages (new/ and cur/ of the
// INBOX and of each .folder, from the S= of their names as Maildir++ writes them, else stat(2)),
// measured at most once a minute per mailbox and counted up by what delivery adds in between.
import fs from 'node:fs/promises'
import path from 'node:path'
import type { Config } from '@facteur/config'
import { FULL_MAILBOXES_FILE, parseFullMailboxes, userQuota, type Accounts } from '@facteur/accounts'
import type { Logger } from '@facteur/logging'
import type { Outcome } from './outcome.js'

const FRESH_MS = 60_000

export type Quotas = {
  /** Re-reads the users' own quotas if the users file changed: once an attempt, before its local copies. */
  refresh(): Promise<void>
  /** The deferral of a copy for `address` into the mailbox at `mailbox` when it is full, else null (after refresh()). */
  check(address: string, mailbox: string): Promise<Outcome | null>
  /** A copy of `bytes` for `address` went into `mailbox` (a QUOTA_WARNING threshold it crosses is reported). */
  added(address: string, mailbox: string, bytes: number): void
  /** Measures each listed mailbox again and lists only those still full (every `freshMs`). */
  sweep(): Promise<void>
  close(): void
}

export async function openQuotas(deps: {
  config: Config
  accounts: Accounts
  logger: Logger
  /** Where an address's mailbox is (null: a name that has none). */
  mailboxOf: (address: string) => string | null
  /** How long a measure holds, and how often the full ones are measured again (a minute). */
  freshMs?: number
  /** A copy took `address`'s mailbox past `percent` (QUOTA_WARNING) of its quota. */
  onWarning?: (warning: { address: string; percent: number; bytes: number; quota: number }) => void
}): Promise<Quotas> {
  const freshMs = deps.freshMs ?? FRESH_MS
  const { config, accounts, logger } = deps
  const usage = new Map<string, { bytes: number; at: number }>()
  const file = path.join(config.spoolDir, FULL_MAILBOXES_FILE)
  // Listed by an earlier run: measured again at the first sweep.
  const full = new Set(parseFullMailboxes(await fs.readFile(file, 'utf8').catch(() => '')))
  let saved = [...full].sort().join('\n')

  const limitOf = (address: string): number => {
    const user = accounts.user(address)
    return (user && userQuota(user)) ?? config.mailbox.quota
  }
  const measure = async (mailbox: string, fresh: boolean): Promise<number> => {
    const known = usage.get(mailbox)
    if (known && !fresh && Date.now() - known.at < freshMs) return known.bytes
    const bytes = config.mailbox.format === 'mbox' ? await fileBytes(mailbox) : await maildirBytes(mailbox)
    usage.set(mailbox, { bytes, at: Date.now() })
    return bytes
  }
  /**
   * Writes the list when it changed (a new file renamed into place: readers never see half of
   * one), one write at a time (two checks finding two mailboxes full at once share the tmp file).
   */
  let saving = Promise.resolve()
  const save = (): Promise<void> =>
    (saving = saving.then(async () => {
      const text = [...full].sort().join('\n')
      if (text === saved) return
      try {
        await fs.writeFile(`${file}.tmp`, text ? `${text}\n` : '')
        await fs.rename(`${file}.tmp`, file)
        saved = text
      } catch (err) {
        logger.warn('full mailboxes not saved', { file, err: (err as Error).message })
      }
    }))
  const sweep = async (): Promise<void> => {
    await accounts.refresh()
    for (const address of [...full]) {
      const mailbox = deps.mailboxOf(address)
      const limit = limitOf(address)
      if (mailbox && limit && (await measure(mailbox, true)) >= limit) continue
      full.delete(address)
      logger.info('mailbox no longer full', { rcpt: address })
    }
    await save()
  }
  const timer = setInterval(() => void sweep().catch((err: Error) => logger.warn('quota sweep failed', { err: err.message })), freshMs)
  timer.unref()
  if (full.size) void sweep().catch(() => undefined)

  return {
    // Once a message, not once a recipient: a stat(2) of each table for each of 10 recipients was
    // a tenth of delivery's CPU for such a message (bench/delivery.ts, RECIPIENTS=10).
    refresh: () => accounts.refresh(),
    async check(address, mailbox) {
      const limit = limitOf(address)
      if (!limit) return null
      const bytes = await measure(mailbox, false)
      if (bytes < limit) return null
      const key = address.toLowerCase()
      if (!full.has(key)) {
        full.add(key)
        logger.warn('mailbox full', { rcpt: address, bytes, quota: limit })
        await save()
      }
      return { status: 'deferred', reply: '452 4.2.2 Mailbox full', detail: `${bytes} bytes of a ${limit}-byte quota` }
    },
    added(address, mailbox, bytes) {
      const known = usage.get(mailbox)
      if (!known) return
      const before = known.bytes
      known.bytes += bytes
      // Dovecot's quota_warning: the highest threshold this copy crossed going up, once per crossing.
      const limit = limitOf(address)
      const crossed = limit ? config.quotaWarnings.filter((p) => before < (limit * p) / 100 && known.bytes >= (limit * p) / 100) : []
      const percent = crossed.at(-1)
      if (percent !== undefined) deps.onWarning?.({ address, percent, bytes: known.bytes, quota: limit })
    },
    sweep,
    close: () => clearInterval(timer),
  }
}

async function fileBytes(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size
  } catch {
    return 0
  }
}

/** A Maildir's messages: new/ and cur/ of the INBOX and of each Maildir++ folder (`.Name`). */
async function maildirBytes(root: string): Promise<number> {
  const folders = [root]
  for (const e of await fs.readdir(root, { withFileTypes: true }).catch(() => []))
    if (e.isDirectory() && /^\.[^.]/.test(e.name)) folders.push(path.join(root, e.name))
  let total = 0
  for (const folder of folders)
    for (const sub of ['new', 'cur']) {
      const dir = path.join(folder, sub)
      for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
        // Maildir++: `,S=<size>` in the name (ours and Dovecot's); else the file's own size.
        const s = /,S=(\d+)/.exec(name)
        total += s ? Number(s[1]) : await fileBytes(path.join(dir, name))
      }
    }
  return total
}
