// A throwaway Postfix instance: a real MTA in front of or behind the service under test.
import { readFileSync } from 'node:fs'
import { chmod, chown, mkdir, readFile, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, waitForPort } from './ports.js'
import { removeDir, run, runOk, systemUser, tempDir } from './process.js'

export interface PostfixOptions {
  /** Where all mail goes: relayhost = [relayHost]:relayPort. Give an IP (no DNS lookup then). */
  relayHost: string
  relayPort: number
  /** main.cf settings added to or replacing the defaults below; values may use $config_directory. */
  extraMain?: Record<string, string>
  /** More master.cf lines, e.g. a second smtpd with -o overrides. */
  extraMaster?: string[]
  /** Files written into the config directory before start, e.g. { 'rcpt': 'gone@ours.example REJECT' }
   * with extraMain { smtpd_recipient_restrictions: 'check_recipient_access texthash:$config_directory/rcpt' }. */
  files?: Record<string, string>
  /** Lists the config directory in `alternate_config_directories` of the default main.cf
   * (/etc/postfix, created empty if absent) while it runs, as postfix(1) asks of a second
   * instance; taken out again by close(). */
  listInDefaultConfig?: boolean
}

/** One queued message, as `postqueue -j` prints it. */
export interface QueueEntry {
  queue_name: string
  queue_id: string
  sender: string
  recipients: { address: string; delay_reason?: string }[]
}

export interface Postfix {
  /** smtpd on 127.0.0.1:port. */
  port: number
  /** main.cf, master.cf and files live here. */
  configDir: string
  /** Postfix's log (maillog_file): every connection, queue id and delivery status. */
  logFile: string
  /** `postqueue -j`: messages in incoming, active, deferred and hold. */
  queue(): Promise<QueueEntry[]>
  queueEmpty(): Promise<boolean>
  /** Polls every 100 ms; rejects with the queue and the log's tail after timeoutMs (default 10 s). */
  waitForEmptyQueue(timeoutMs?: number): Promise<void>
  /** `postqueue -f`: retry deferred mail now. */
  flush(): Promise<void>
  /** Stops the master (`postfix abort`, then waits for it to exit), then the temp directory goes. */
  close(): Promise<void>
}

const running = new Set<string>()
process.once('exit', () => {
  // A test that never called close(): stop its master, or it outlives the test run.
  for (const dir of running) {
    try {
      process.kill(Number(readFileSync(masterPidFile(dir), 'utf8').trim()), 'SIGTERM')
    } catch {
      // already gone
    }
  }
})

/**
 * Starts a Postfix with its own config directory (main.cf + master.cf in a temp dir), queue,
 * data directory and log file, via `postfix -c <dir> start`. smtpd listens on a free loopback
 * port, accepts mail from 127.0.0.0/8 for any domain and relays everything to the relay host; no
 * local delivery (mydestination is empty, local_transport = error:no local), no TLS either way
 * unless extraMain turns it on. Quick for tests: retries after 1 s (queue_run_delay,
 * minimal_backoff_time) and no 1 s pause after a rejected command (smtpd_error_sleep_time = 0).
 * Needs root. /etc/postfix is neither read nor changed unless listInDefaultConfig asks: as root,
 * `postfix -c` accepts any config directory without alternate_config_directories.
 */
export async function startPostfix(options: PostfixOptions): Promise<Postfix> {
  const dir = await tempDir('postfix')
  await chmod(dir, 0o755) // the postfix user must reach the queue inside
  const queueDir = join(dir, 'queue')
  await makeQueue(queueDir, join(dir, 'data'))
  const port = await freePort()
  const logFile = join(dir, 'maillog')
  const main: Record<string, string> = {
    compatibility_level: '3.6',
    queue_directory: queueDir,
    data_directory: join(dir, 'data'),
    maillog_file: logFile,
    maillog_file_prefixes: dir,
    myhostname: 'postfix.test',
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    mydestination: '',
    local_transport: 'error:no local',
    local_recipient_maps: '',
    alias_maps: '',
    alias_database: '',
    relayhost: `[${options.relayHost}]:${options.relayPort}`,
    smtp_tls_security_level: 'none',
    smtpd_tls_security_level: 'none',
    smtpd_banner: '$myhostname ESMTP',
    biff: 'no',
    smtpd_error_sleep_time: '0', // default 1s after every rejected command
    queue_run_delay: '1s',
    minimal_backoff_time: '1s',
    maximal_backoff_time: '10s',
    ...options.extraMain,
  }
  const master = [
    // service type private unpriv chroot wakeup maxproc command: nothing chrooted, no copies of /etc needed.
    `127.0.0.1:${port} inet n - n - - smtpd`,
    'pickup unix n - n 60 1 pickup',
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'tlsmgr unix - - n 1000? 1 tlsmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'flush unix n - n 1000? 0 flush',
    'proxymap unix - - n - - proxymap',
    'proxywrite unix - - n - 1 proxymap',
    'smtp unix - - n - - smtp',
    'relay unix - - n - - smtp',
    'showq unix n - n - - showq',
    'error unix - - n - - error',
    'retry unix - - n - - error',
    'discard unix - - n - - discard',
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
    ...(options.extraMaster ?? []),
  ]
  await writeFile(
    join(dir, 'main.cf'),
    Object.entries(main)
      .map(([key, value]) => `${key} = ${value}\n`)
      .join(''),
  )
  await writeFile(join(dir, 'master.cf'), master.map((line) => `${line}\n`).join(''))
  for (const [name, content] of Object.entries(options.files ?? {})) await writeFile(join(dir, name), content)
  // Postfix waits until main.cf and map files changed in the last 2 s are older (an editor may
  // still be writing them): backdating them saves those 2 s per start.
  const past = new Date(Date.now() - 60_000)
  for (const name of ['main.cf', 'master.cf', ...Object.keys(options.files ?? {})]) await utimes(join(dir, name), past, past)

  const postfix = (...args: string[]) => run('postfix', ['-c', dir, ...args], { timeoutMs: 20_000 })
  const postqueue = (...args: string[]) => runOk('postqueue', ['-c', dir, ...args], { timeoutMs: 10_000 })
  const logTail = async () => (await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-30).join('\n')

  if (options.listInDefaultConfig) await alternateConfigDirectory(dir, 'add')
  const started = await postfix('start')
  if (started.code !== 0) {
    const log = await logTail()
    if (options.listInDefaultConfig) await alternateConfigDirectory(dir, 'remove')
    await postfix('abort')
    await removeDir(dir)
    throw new Error(`postfix -c ${dir} start exited with ${started.code}\n${started.stdout}${started.stderr}${log}`)
  }
  running.add(dir)
  try {
    await waitForPort(port, '127.0.0.1', 10_000)
  } catch (err) {
    const log = await logTail()
    await postfix('abort')
    running.delete(dir)
    if (options.listInDefaultConfig) await alternateConfigDirectory(dir, 'remove')
    await removeDir(dir)
    throw new Error(`${(err as Error).message}\n${log}`, { cause: err })
  }

  const queue = async (): Promise<QueueEntry[]> => {
    const { stdout } = await postqueue('-j')
    return stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as QueueEntry)
  }
  return {
    port,
    configDir: dir,
    logFile,
    queue,
    queueEmpty: async () => (await queue()).length === 0,
    async waitForEmptyQueue(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const entries = await queue()
        if (entries.length === 0) return
        if (Date.now() > deadline) {
          throw new Error(`Postfix queue not empty after ${timeoutMs} ms: ${JSON.stringify(entries)}\n${await logTail()}`)
        }
        await sleep(100)
      }
    },
    async flush() {
      await postqueue('-f')
    },
    async close() {
      if (!running.delete(dir)) return
      // `postfix stop` is `kill master` and then checks once a second; `abort` is the same kill
      // without the wait, so wait here in 20 ms steps (bounded: 250 steps) and SIGKILL after.
      const pid = await masterPid(dir)
      await postfix('abort')
      for (let i = 0; i < 250 && pid !== undefined && (await alive(pid)); i++) await sleep(20)
      if (pid !== undefined && (await alive(pid))) process.kill(pid, 'SIGKILL')
      if (options.listInDefaultConfig) await alternateConfigDirectory(dir, 'remove')
      await removeDir(dir)
    },
  }
}

/**
 * The queue and data directories as /etc/postfix/postfix-files lists them, plus the quick-start
 * flag: `postfix start` then skips `post-install create-missing` and the integrity scans, which
 * cost about 2 s per start.
 */
async function makeQueue(queueDir: string, dataDir: string): Promise<void> {
  const owner = await systemUser('postfix')
  const postdrop = (await readFile('/etc/group', 'utf8')).split('\n').find((line) => line.startsWith('postdrop:'))
  if (!postdrop) throw new Error('no group postdrop in /etc/group (is the postfix package installed?)')
  const postdropGid = Number(postdrop.split(':')[2])
  await mkdir(queueDir, { mode: 0o755 })
  await mkdir(join(queueDir, 'pid'), { mode: 0o755 })
  const dirs: [string, number, number][] = [
    [dataDir, 0o700, 0],
    ...['active', 'bounce', 'corrupt', 'defer', 'deferred', 'flush', 'hold', 'incoming', 'private', 'saved', 'trace'].map(
      (name): [string, number, number] => [join(queueDir, name), 0o700, 0],
    ),
    [join(queueDir, 'maildrop'), 0o730, postdropGid],
    [join(queueDir, 'public'), 0o710, postdropGid],
  ]
  for (const [path, mode, gid] of dirs) {
    await mkdir(path)
    await chmod(path, mode) // mkdir's mode is filtered by the umask
    await chown(path, owner.uid, gid)
  }
  await writeFile(join(queueDir, 'quick-start'), '')
}

/**
 * Adds `dir` to (or removes it from) `alternate_config_directories` in the default main.cf with
 * `postconf -e`, keeping the other entries: adding twice lists it once. Needs root.
 */
async function alternateConfigDirectory(dir: string, change: 'add' | 'remove'): Promise<void> {
  const defaultDir = (await runOk('postconf', ['-d', '-h', 'config_directory'])).stdout.trim() || '/etc/postfix'
  await writeFile(join(defaultDir, 'main.cf'), '', { flag: 'a' }) // postconf -e needs the file
  const listed = (await runOk('postconf', ['-h', 'alternate_config_directories'])).stdout.split(/[\s,]+/).filter(Boolean)
  const next = change === 'add' ? (listed.includes(dir) ? listed : [...listed, dir]) : listed.filter((d) => d !== dir)
  if (next.length === listed.length && next.every((d, i) => d === listed[i])) return
  await runOk('postconf', ['-e', `alternate_config_directories = ${next.join(', ')}`])
}

function masterPidFile(dir: string): string {
  return join(dir, 'queue', 'pid', 'master.pid')
}

async function masterPid(dir: string): Promise<number | undefined> {
  const text = await readFile(masterPidFile(dir), 'utf8').catch(() => '')
  const pid = Number(text.trim())
  return Number.isInteger(pid) && pid > 0 ? pid : undefined
}

/** Running and not a zombie (an exited master lingers until init reaps it). Linux /proc. */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  // Fields after the command name in parentheses: "state ppid ..."; Z is a zombie.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
  return stat !== '' && state !== 'Z' && state !== 'X'
}
