// A throwaway Postfix that delivers locally, into Maildirs, as our delivery does with
// MAILBOX_FORMAT=maildir: the other side of the mail benchmark. Built on startPostfix (its own
// config directory, queue, log file); mail for `domain` goes through virtual(8) to
// <mailDir>/<user>/new, every other domain would go to the (unused) relay host.
import { chown, mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { startPostfix, type Postfix } from './postfix.js'
import { removeDir, systemUser, tempDir } from './process.js'

export interface LocalPostfix extends Postfix {
  /** virtual_mailbox_base: one Maildir per user below it. */
  mailDir: string
  /** Messages in the users' new/ directories (a 10-recipient message counts 10). */
  delivered(): Promise<number>
}

export async function startLocalPostfix(opts: { domain: string; users: string[] }): Promise<LocalPostfix> {
  const mailDir = await tempDir('postfix-mail')
  // virtual(8) writes as virtual_uid_maps; nobody is above virtual_minimum_uid (100).
  const owner = await systemUser('nobody')
  await chown(mailDir, owner.uid, owner.gid)
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
      // A trailing slash: Maildir format (the file is fsync'd before the rename into new/).
      virtual_mailbox_maps: 'texthash:$config_directory/vmailbox',
      virtual_uid_maps: `static:${owner.uid}`,
      virtual_gid_maps: `static:${owner.gid}`,
    },
    extraMaster: ['virtual unix - n n - - virtual'],
    files: { vmailbox: opts.users.map((u) => `${u}@${opts.domain} ${u}/\n`).join('') },
  })
  return {
    ...postfix,
    mailDir,
    delivered: () => countMaildirs(mailDir, opts.users),
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
