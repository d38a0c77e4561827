// A throwaway Dovecot IMAP server, to read back what delivery wrote into local mailboxes.
import { chmod, chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ImapFlow } from 'imapflow'
import { freePort } from './ports.js'
import { removeDir, spawnDaemon, tempDir } from './process.js'

export interface DovecotUser {
  /** Login name, 'user' or 'user@domain' (%u in mail_location; %n and %d are its parts). */
  user: string
  password: string
  uid: number
  gid: number
  /** Default <tmp>/home/<user>; created owned by uid:gid, mode 0700, when missing. */
  home?: string
  /** passwd-file extra fields, e.g. `userdb_quota_rule=*:storage=1G` (as our users file keeps them). */
  extra?: string
}

export interface DovecotOptions {
  format: 'mbox' | 'maildir'
  /** Dovecot's mail_location as is, e.g. 'mbox:~/mail:INBOX=/var/mail/%u' or 'maildir:/srv/mail/%d/%n'. */
  mailLocation: string
  users: DovecotUser[]
  /** auth_verbose, auth_debug and mail_debug into logFile. */
  debug?: boolean
  /** More dovecot.conf lines, appended at the end. */
  extraConfig?: string
}

export interface Dovecot {
  port: number
  /** Dovecot's own log (errors, auth failures, lock timeouts). */
  logFile: string
  /** Full RFC 822 source of each message in `mailbox`, in mailbox order. Read-only: EXAMINE, BODY.PEEK. */
  fetchAll(user: string, password: string, mailbox?: string): Promise<string[]>
  /** Mailbox names as LISTed, e.g. ['INBOX', 'Sent']. */
  list(user: string, password: string): Promise<string[]>
  /** The INBOX quota root's storage limit as GETQUOTAROOT tells it (bytes), or false without the QUOTA extension. */
  quotaLimit(user: string, password: string): Promise<number | false>
  close(): Promise<void>
}

/**
 * Starts `/usr/sbin/dovecot -F` (Dovecot 2.3 syntax, as in Debian 12) with IMAP on
 * 127.0.0.1:<free port>, no TLS, cleartext login, a passwd-file with {PLAIN} passwords, and its
 * base_dir, state_dir and log in a temp directory. Runs as root and drops to each user's uid/gid.
 *
 * What the mailboxes need (mail is read as the user's uid:gid, never as root):
 * - every directory on the path must be searchable (x) by that uid;
 * - mbox: the mbox file readable and writable by the uid (uid:gid 5000:5000, mode 0600 is fine);
 * - mbox: the INBOX directory must let the user create `<mbox>.lock` dotlocks (the convention
 *   packages/mailbox uses; mbox_write_locks = dotlock fcntl): mode 1777, or group `mail` with
 *   g+w (root:mail 0775 or 2775, through mail_privileged_group = mail). In a root-owned 0755
 *   directory fetchAll still returns the messages, but the log fills with file_dotlock_create
 *   "Permission denied" errors and nothing is written back;
 * - mbox: on its first look at a mailbox Dovecot rewrites it, even read-only (EXAMINE), adding
 *   X-IMAPbase, X-UID and Status headers (X-Status for flags) to the file, and hides them from
 *   IMAP. Read the raw file before fetchAll() if a test compares bytes. Dovecot does not unquote
 *   `>From ` body lines;
 * - maildir: the Maildir (cur/ new/ tmp/) owned by the uid, or a parent it may create it in;
 * - home: <tmp>/home/<user> by default, created owned by uid:gid. mbox:~/mail makes ~/mail there.
 */
export async function startDovecot(options: DovecotOptions): Promise<Dovecot> {
  if (!options.mailLocation.startsWith(`${options.format}:`)) {
    throw new Error(`mailLocation ${options.mailLocation} is not a ${options.format} location`)
  }
  const dir = await tempDir('dovecot')
  await chmod(dir, 0o755) // login and auth processes run as dovenull / dovecot and must reach their sockets
  const port = await freePort()
  const logFile = join(dir, 'dovecot.log')
  const usersFile = join(dir, 'users')
  const confFile = join(dir, 'dovecot.conf')

  await mkdir(join(dir, 'home'), { mode: 0o755 })
  const lines: string[] = []
  for (const user of options.users) {
    if (/[:\n]/.test(user.user + user.password)) throw new Error(`user or password of ${user.user} has ':' or a newline`)
    if (user.extra?.includes('\n')) throw new Error(`extra fields of ${user.user} have a newline`)
    const home = user.home ?? join(dir, 'home', user.user)
    if (!(await exists(home))) {
      await mkdir(home, { recursive: true, mode: 0o700 })
      await chown(home, user.uid, user.gid)
    }
    // passwd-file: user:password:uid:gid:gecos:home:shell:extra_fields
    lines.push(`${user.user}:{PLAIN}${user.password}:${user.uid}:${user.gid}::${home}::${user.extra ?? ''}`)
  }
  await writeFile(usersFile, `${lines.join('\n')}\n`, { mode: 0o644 })

  const uids = options.users.map((user) => user.uid)
  const conf = `# Written by test/support/dovecot.ts
base_dir = ${dir}/run
state_dir = ${dir}/state
instance_name = facteur-test-${port}
log_path = ${logFile}
info_log_path = ${logFile}
debug_log_path = ${logFile}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1
last_valid_uid = ${Math.max(65_534, ...uids)}
first_valid_gid = 1
mail_location = ${options.mailLocation}
mail_privileged_group = mail
mbox_write_locks = dotlock fcntl
auth_verbose = ${options.debug ? 'yes' : 'no'}
auth_debug = ${options.debug ? 'yes' : 'no'}
mail_debug = ${options.debug ? 'yes' : 'no'}

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${usersFile}
}
userdb {
  driver = passwd-file
  args = username_format=%u ${usersFile}
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
${options.extraConfig ?? ''}
`
  await writeFile(confFile, conf)

  const daemon = spawnDaemon('/usr/sbin/dovecot', ['-F', '-c', confFile])
  try {
    await daemon.ready(port)
  } catch (err) {
    await daemon.stop()
    const log = await readLog(logFile)
    await removeDir(dir)
    throw new Error(`${(err as Error).message}\n${log}`, { cause: err })
  }

  return {
    port,
    logFile,
    fetchAll: (user, password, mailbox = 'INBOX') =>
      withImap(port, user, password, async (client) => {
        const opened = await client.mailboxOpen(mailbox, { readOnly: true })
        if (opened.exists === 0) return []
        const messages = await client.fetchAll('1:*', { source: true })
        return messages.map((message) => message.source?.toString('utf8') ?? '')
      }),
    list: (user, password) => withImap(port, user, password, async (client) => (await client.list()).map((entry) => entry.path)),
    quotaLimit: (user, password) =>
      withImap(port, user, password, async (client) => {
        const q = (await client.getQuota('INBOX')) as false | { storage?: { limit: number } }
        return q && q.storage ? q.storage.limit : false
      }),
    async close() {
      await daemon.stop()
      await removeDir(dir)
    },
  }
}

async function withImap<T>(port: number, user: string, password: string, fn: (client: ImapFlow) => Promise<T>): Promise<T> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: false,
    auth: { user, pass: password },
    logger: false,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.logout().catch(() => client.close())
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}

async function readLog(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '(no dovecot log)')
}
