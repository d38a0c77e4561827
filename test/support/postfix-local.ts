// A throwaway Postfix that delivers locally, into Maildirs or mbox files, as our delivery does
// with MAILBOX_FORMAT=maildir or mbox: the other side of the mail benchmark. Built on startPostfix
// (its own config directory, queue, log file); mail for `domain` goes through virtual(8) to
// <mailDir>/<user>/new (Maildir) or <mailDir>/<user> (mbox), every other domain would go to the
// (unused) relay host.
import { chown, mkdir, open, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { startPostfix, type Postfix } from './postfix.js'
import { removeDir, systemUser, tempDir } from './process.js'

export interface LocalPostfix extends Postfix {
  /** virtual_mailbox_base: one Maildir per user below it. */
  mailDir: string
  /** Messages in the users' new/ directories (a 10-recipient message counts 10). */
  delivered(): Promise<number>
}

/**
 * What an administrator changes for a load test, with the reasons (Postfix's defaults suit a
 * small site; these are its documented knobs, nothing that skips an fsync):
 * - default_process_limit 100: at most 100 smtpd, so of 500 parallel sessions 400 wait in the
 *   listen queue and time out before their greeting. 600 serves 500 sessions at once.
 * - in_flow_delay 1s: an smtpd that finds no token from the queue manager (mail arriving faster
 *   than qmgr moves it to active/) sleeps up to 1 s per message. 0: no throttle, as we have none.
 * - smtpd_client_connection_count_limit / _rate_limit: anvil's per-client limits; the bench client
 *   is one IP (127.0.0.1, already exempt via mynetworks): 0 says it without relying on that.
 * - smtpd_peername_lookup no: no reverse DNS per connection (our ingress does none either).
 * - virtual_destination_concurrency_limit 50: parallel virtual(8) deliveries into the one
 *   domain (default 20); max_use 1000: fewer process re-spawns (default 100 uses).
 */
export const BENCHMARK_TUNING: Readonly<Record<string, string>> = {
  default_process_limit: '600',
  in_flow_delay: '0s',
  smtpd_client_connection_count_limit: '0',
  smtpd_client_connection_rate_limit: '0',
  smtpd_peername_lookup: 'no',
  virtual_destination_concurrency_limit: '50',
  max_use: '1000',
}

/**
 * With mbox, added to the tuning above: one delivery at a time into each mailbox, as mbox's lock
 * allows (local(8) limits its concurrency per recipient too). With virtual(8)'s 50 at once into one
 * file, every delivery that finds the lock taken sleeps about a second (deliver_lock_delay) before
 * it tries again. And no size limit on a mailbox (virtual_mailbox_limit).
 */
export const MBOX_TUNING: Readonly<Record<string, string>> = {
  virtual_destination_recipient_limit: '1',
  virtual_destination_concurrency_limit: '1',
  // An mbox grows with every message; the default 51,200,000 bytes bounces the benchmark's mail.
  virtual_mailbox_limit: '0',
}

export type MailboxFormat = 'maildir' | 'mbox'

export async function startLocalPostfix(opts: { domain: string; users: string[]; format?: MailboxFormat }): Promise<LocalPostfix> {
  const format = opts.format ?? 'maildir'
  const mailDir = await tempDir('postfix-mail')
  // virtual(8) writes as virtual_uid_maps; nobody is above virtual_minimum_uid (100).
  const owner = await systemUser('nobody')
  await chown(mailDir, owner.uid, owner.gid)
  if (format === 'maildir')
    for (const u of opts.users) {
      for (const sub of ['', 'tmp', 'new', 'cur']) await mkdir(join(mailDir, u, sub), { recursive: true })
      for (const sub of ['', 'tmp', 'new', 'cur']) await chown(join(mailDir, u, sub), owner.uid, owner.gid)
    }
  const postfix = await startPostfix({
    relayHost: '127.0.0.1',
    relayPort: 9,
    extraMain: {
      virtual_mailbox_domains: opts.domain,
      virtual_mailbox_base: mailDir,
      // A trailing slash: Maildir format (the file is fsync'd before the rename into new/);
      // without, an mbox file (appended under virtual_mailbox_lock, fsync'd).
      virtual_mailbox_maps: 'texthash:$config_directory/vmailbox',
      virtual_uid_maps: `static:${owner.uid}`,
      virtual_gid_maps: `static:${owner.gid}`,
      ...BENCHMARK_TUNING,
      ...(format === 'mbox' ? MBOX_TUNING : {}),
    },
    extraMaster: ['virtual unix - n n - - virtual'],
    files: { vmailbox: opts.users.map((u) => `${u}@${opts.domain} ${u}${format === 'maildir' ? '/' : ''}\n`).join('') },
    listInDefaultConfig: true,
  })
  return {
    ...postfix,
    mailDir,
    delivered: format === 'maildir' ? () => countMaildirs(mailDir, opts.users) : mboxCounter(mailDir, opts.users),
    async close() {
      await postfix.close()
      await removeDir(mailDir)
    },
  }
}

/** Files in <base>/<user>/new for each user (how both sides' deliveries are counted). */
export async function countMaildirs(base: string, users: string[]): Promise<number> {
  let n = 0
  for (const u of users) n += (await readdir(join(base, u, 'new')).catch(() => [])).length
  return n
}

/**
 * Messages in <base>/<user> mbox files (lines that begin with `From `: mboxrd quotes the body's),
 * read as they grow: each call reads only the bytes appended since the last. A message counts from
 * its `From ` line on; a mailbox cut back (a failed append) is not followed (the benchmark's are
 * not: a failure would show as mail missing from the count).
 */
export function mboxCounter(base: string, users: string[]): () => Promise<number> {
  const files = users.map((u) => ({ path: join(base, u), offset: 0, count: 0, partial: Buffer.alloc(0) }))
  const FROM = Buffer.from('\nFrom ')
  // One read buffer for every call: the bench polls every 50 ms while the servers it measures run.
  const chunk = Buffer.allocUnsafe(1 << 20)
  return async () => {
    for (const f of files) {
      const fh = await open(f.path, 'r').catch(() => null)
      if (!fh) continue
      try {
        for (;;) {
          const { bytesRead } = await fh.read({ buffer: chunk, position: f.offset })
          if (bytesRead === 0) break
          f.offset += bytesRead
          // Whole lines only; the last, partial one waits for the rest. `data` begins a line.
          const data = Buffer.concat([f.partial, chunk.subarray(0, bytesRead)])
          const end = data.lastIndexOf(0x0a) + 1
          f.partial = Buffer.from(data.subarray(end))
          const lines = data.subarray(0, end)
          if (lines.subarray(0, 5).toString('latin1') === 'From ') f.count++
          for (let i = lines.indexOf(FROM); i !== -1; i = lines.indexOf(FROM, i + 1)) f.count++
        }
      } finally {
        await fh.close()
      }
    }
    return files.reduce((n, f) => n + f.count, 0)
  }
}
