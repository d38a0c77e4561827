// The mailboxes check of delivery's /healthz: the directory every mailbox lives in (the base of
// MAILBOX_PATH, MAIL_DIR by default) must exist and be writable by the uid delivery runs as,
// or no message can be delivered locally (a new mbox, its dotlock, a Maildir all go there).
import fs from 'node:fs/promises'
import type { CheckResult } from '@facteur/health'

export async function checkMailboxDir(dir: string): Promise<CheckResult> {
  try {
    // access(2): the real uid, the one delivery creates mailboxes and dotlocks as.
    await fs.access(dir, fs.constants.W_OK | fs.constants.X_OK)
    return { status: 'ok', detail: dir }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    const why =
      code === 'ENOENT'
        ? 'is missing'
        : code === 'EACCES'
          ? `is not writable by uid ${process.getuid?.() ?? '?'}`
          : code === 'EROFS'
            ? 'is on a read-only file system'
            : 'cannot be written'
    return { status: 'fail', detail: `mailbox directory ${dir} ${why} (${code})` }
  }
}
