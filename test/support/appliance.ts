// Starts the whole appliance as `npm start` does (the supervisor and its child services) on
// ephemeral ports with temporary directories, and waits until every service has announced its
// ports. For end-to-end tests and benchmarks.
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

export type Appliance = {
  dir: string
  configDir: string
  spoolDir: string
  mailDir: string
  env: Record<string, string>
  /** ports.json as the supervisor wrote it: service -> listener -> {address, port}. */
  ports: Record<string, Record<string, { address: string; port: number }>>
  port(service: string, listener: string): number
  /** Everything the processes printed so far. */
  output(): string
  /** Waits until output matches (a log line); returns the matching text. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>
  /** SIGTERM to the supervisor; resolves with its exit code. */
  stop(): Promise<number | null>
  supervisor: ChildProcess
}

export type ApplianceOptions = {
  env?: Record<string, string>
  users?: Record<string, string> // address -> plain password
  aliases?: string
  /** Services expected in the ports file before start resolves. */
  services?: string[]
  timeoutMs?: number
}

/**
 * The services' environment for a test: listeners on loopback, on ports the kernel picks; the
 * configuration, the spool and the mailboxes under `dir`; no content filter; DNS queries to a
 * loopback port where nothing answers (none leaves for the system's resolver), so senders' domains
 * are not checked.
 */
export function loopbackEnv(dir: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    ENV_FILE: '/dev/null',
    MAIL_DOMAIN: 'ours.example',
    CONFIG_DIR: path.join(dir, 'config'),
    SPOOL_DIR: path.join(dir, 'spool'),
    MAIL_DIR: path.join(dir, 'mail'),
    SMTP_LISTEN: '127.0.0.1',
    SMTP_PORT: '0',
    INGRESS_HEALTH_PORT: '0',
    DELIVERY_HEALTH_PORT: '0',
    SUBMISSION_PORT: '0',
    SUBMISSIONS_PORT: '0',
    SUBMISSION_HEALTH_PORT: '0',
    FILTER_PORT: '0',
    FILTER_URL: 'off',
    SUPERVISOR_PORT: '0',
    DNS_SERVERS: '127.0.0.1:9',
    // With no DNS every sender's domain would be deferred (451 4.4.3): tests that check it say so.
    UNKNOWN_SENDER_DOMAIN: 'accept',
  }
}

export async function startAppliance(opts: ApplianceOptions = {}): Promise<Appliance> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-e2e-'))
  const { FILTER_URL, ...loopback } = loopbackEnv(dir)
  // The directories the services are told to use, made here with the tables they read.
  const { CONFIG_DIR: configDir, SPOOL_DIR: spoolDir, MAIL_DIR: mailDir } = loopback
  for (const d of [configDir, spoolDir, mailDir]) await fs.mkdir(d, { recursive: true })
  await fs.writeFile(
    path.join(configDir, 'users'),
    Object.entries(opts.users ?? {})
      .map(([u, p]) => `${u}:{PLAIN}${p}\n`)
      .join(''),
  )
  await fs.writeFile(path.join(configDir, 'aliases'), opts.aliases ?? '')
  const env: Record<string, string> = {
    ...loopback,
    // The content filter needs clamd and spamd: only tests that ask for it (services: [..., 'filter']) get it.
    ...(opts.services?.includes('filter') ? {} : { FILTER_URL }),
    MAIL_HOSTNAME: 'mx.ours.example',
    QUEUE_SCAN_INTERVAL: '200ms',
    LOG_FORMAT: 'text',
    LOG_LEVEL: 'info',
    ...opts.env,
  }
  let out = ''
  const supervisor = spawn(
    process.execPath,
    // FACTEUR_NODE_ARGS: node options for the supervisor and, through its execArgv, every service
    // (`--cpu-prof --cpu-prof-dir=DIR` profiles a run: bench/README.md).
    // FACTEUR_BUILT=1: the built JavaScript by plain node, as the image runs it (`npm run build` first).
    [
      ...(process.env.FACTEUR_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      ...(process.env.FACTEUR_BUILT
        ? [path.join(ROOT, 'services/supervisor/dist/main.js')]
        : ['--import', 'tsx', '--conditions=source', path.join(ROOT, 'services/supervisor/src/main.ts')]),
    ],
    {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // a process group of its own: stop() can kill whatever a failed test left behind
    },
  )
  const waiters: (() => void)[] = []
  const onData = (c: Buffer): void => {
    out += c.toString()
    for (const w of waiters.splice(0)) w()
  }
  supervisor.stdout?.on('data', onData)
  supervisor.stderr?.on('data', onData)
  const exited = new Promise<number | null>((resolve) => supervisor.once('exit', (code) => resolve(code)))

  const waitForLog = async (re: RegExp, timeoutMs = 15_000): Promise<string> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const m = re.exec(out)
      if (m) return m[0]
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re} in:\n${out}`)
      await new Promise<void>((resolve) => {
        waiters.push(resolve)
        setTimeout(resolve, 200)
      })
    }
  }

  const portsFile = path.join(spoolDir, 'ports.json')
  const expected = opts.services ?? ['smtp-ingress', 'delivery']
  const deadline = Date.now() + (opts.timeoutMs ?? 90_000)
  let ports: Appliance['ports'] = {}
  for (;;) {
    try {
      ports = JSON.parse(await fs.readFile(portsFile, 'utf8')) as Appliance['ports']
      // Every service announces its health listener last: once it is there, all its listeners are.
      if (expected.every((s) => (s === 'supervisor' ? ports[s]?.status : ports[s]?.health))) break
    } catch {
      // not written yet
    }
    if (supervisor.exitCode !== null) throw new Error(`supervisor exited with ${supervisor.exitCode}:\n${out}`)
    if (Date.now() > deadline) {
      supervisor.kill('SIGKILL')
      throw new Error(`appliance did not start in time:\n${out}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }

  return {
    dir,
    configDir,
    spoolDir,
    mailDir,
    env,
    ports,
    supervisor,
    port(service, listener) {
      const p = ports[service]?.[listener]?.port
      if (!p) throw new Error(`no port ${service}.${listener} in ${JSON.stringify(ports)}`)
      return p
    },
    output: () => out,
    waitForLog,
    async stop() {
      if (supervisor.exitCode === null) supervisor.kill('SIGTERM')
      const timer = setTimeout(() => supervisor.kill('SIGKILL'), 20_000)
      const code = await exited
      clearTimeout(timer)
      try {
        process.kill(-supervisor.pid!, 'SIGKILL') // children a killed supervisor left (stopped, hung)
      } catch {
        // the group is gone: all exited
      }
      supervisor.stdout?.destroy()
      supervisor.stderr?.destroy()
      return code
    },
  }
}

/** Re-reads the ports file (after a restart). */
export async function readPorts(spoolDir: string): Promise<Appliance['ports']> {
  return JSON.parse(await fs.readFile(path.join(spoolDir, 'ports.json'), 'utf8')) as Appliance['ports']
}
