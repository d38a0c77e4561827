// Child processes for test daemons and clients: bounded in time, killed when the test run exits.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitForPort } from './ports.js'

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  timedOut: boolean
}

export interface RunOptions {
  timeoutMs?: number
  input?: string | Buffer
  env?: NodeJS.ProcessEnv
  cwd?: string
}

/** Runs a command to completion; SIGKILL after timeoutMs (default 30 s). Never throws for a non-zero exit. */
export async function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const { timeoutMs = 30_000, input, env, cwd } = options
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] })
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`cannot run ${command}: ${err.message}`, { cause: err }))
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        timedOut,
      })
    })
    child.stdin.on('error', () => {}) // the command may exit without reading its input
    child.stdin.end(input)
  })
}

/** Like run(), but throws with the command's output when it exits non-zero or times out. */
export async function runOk(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(command, args, options)
  if (result.code !== 0) {
    const why = result.timedOut ? 'timed out' : `exited with ${result.code ?? result.signal}`
    throw new Error(`${command} ${args.join(' ')} ${why}\n${result.stdout}${result.stderr}`)
  }
  return result
}

const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

/** A long-running child: its output is kept (last 64 KiB) for error messages. */
export interface Daemon {
  readonly child: ChildProcess
  readonly exited: Promise<void>
  output(): string
  /** Resolves when the port accepts connections; rejects with the daemon's output if it exits first. */
  ready(port: number, timeoutMs?: number): Promise<void>
  /** SIGTERM, then SIGKILL after timeoutMs (a paused daemon is continued first). */
  stop(timeoutMs?: number): Promise<void>
  /**
   * SIGSTOP to the daemon and every process it forked (spamd's children accept connections too):
   * the kernel still accepts connections on its port, nobody answers them. resume() is SIGCONT.
   */
  pause(): Promise<void>
  resume(): Promise<void>
}

export function spawnDaemon(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Daemon {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-65_536)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  let exitedEarly: Error | undefined
  const exited = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      exitedEarly = new Error(`cannot run ${command}: ${err.message}`, { cause: err })
      live.delete(child)
      resolve()
    })
    child.once('exit', (code, signal) => {
      exitedEarly ??= new Error(`${command} exited with ${code ?? signal}\n${output}`)
      live.delete(child)
      resolve()
    })
  })
  return {
    child,
    exited,
    output: () => output,
    async ready(port, timeoutMs = 10_000) {
      const giveUp = new AbortController()
      const failed = exited.then(() => {
        giveUp.abort()
        throw exitedEarly ?? new Error(`${command} exited`)
      })
      failed.catch(() => {}) // an exit after ready() is for stop() and the test to notice
      await Promise.race([waitForPort(port, '127.0.0.1', timeoutMs, giveUp.signal), failed])
    },
    async stop(timeoutMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null || !live.has(child)) return
      child.kill('SIGTERM')
      await signalTree(child.pid, 'SIGCONT') // a stopped process acts on SIGTERM once continued
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      await exited
      clearTimeout(timer)
    },
    pause: () => signalTree(child.pid, 'SIGSTOP'),
    resume: () => signalTree(child.pid, 'SIGCONT'),
  }
}

/** A daemon a test can take away and bring back on the same port: the outage cases. */
export interface Outage {
  output(): string
  /** SIGTERM: connections refused; start() runs it again with the same arguments. */
  stop(): Promise<void>
  start(): Promise<void>
  /** SIGSTOP (it and its children): connections accepted by the kernel, never answered; resume() continues it. */
  pause(): Promise<void>
  resume(): Promise<void>
}

/** spawnDaemon, started and ready on `port`, as an Outage; a daemon that does not come up is stopped and the error thrown. */
export async function startOutage(command: string, args: readonly string[], port: number, readyMs?: number): Promise<Outage> {
  let daemon: Daemon
  const start = async (): Promise<void> => {
    daemon = spawnDaemon(command, args)
    try {
      await daemon.ready(port, readyMs)
    } catch (err) {
      await daemon.stop()
      throw err
    }
  }
  await start()
  return {
    output: () => daemon.output(),
    stop: () => daemon.stop(),
    start,
    pause: () => daemon.pause(),
    resume: () => daemon.resume(),
  }
}

/** A started Outage on 127.0.0.1:`port` whose files are in `dir`: close() stops it and removes `dir`. */
export type LoopbackDaemon = Outage & { port: number; host: string; close(): Promise<void> }

/** startOutage for a daemon kept in `dir` (removed too when the daemon does not come up). */
export async function startLoopbackDaemon(
  command: string,
  args: readonly string[],
  port: number,
  dir: string,
  readyMs?: number,
): Promise<LoopbackDaemon> {
  let daemon: Outage
  try {
    daemon = await startOutage(command, args, port, readyMs)
  } catch (err) {
    await removeDir(dir)
    throw err
  }
  return {
    port,
    host: '127.0.0.1',
    ...daemon,
    async close() {
      await daemon.stop()
      await removeDir(dir)
    },
  }
}

/** Sends a signal to a process and its descendants (from /proc/PID/stat), parents first. */
async function signalTree(pid: number | undefined, signal: NodeJS.Signals): Promise<void> {
  if (pid === undefined) return
  const parents = new Map<number, number[]>()
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue
    // proc(5): "pid (comm) state ppid ...", comm may hold spaces and parentheses.
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '')
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    if (ppid) parents.set(ppid, [...(parents.get(ppid) ?? []), Number(name)])
  }
  const order = [pid]
  for (let i = 0; i < order.length; i++) order.push(...(parents.get(order[i]) ?? []))
  for (const p of order) {
    try {
      process.kill(p, signal)
    } catch {
      // exited meanwhile
    }
  }
}

/** A fresh directory under os.tmpdir(), mode 0700 (mkdtemp's default). */
export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `facteur-${prefix}-`))
}

/** rm -rf, bounded retries for daemons still letting go of files. */
export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 })
}

/** uid and gid of a local account, from /etc/passwd (no NSS lookups needed in a container). */
export async function systemUser(name: string): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile('/etc/passwd', 'utf8')
  for (const line of passwd.split('\n')) {
    const [user, , uid, gid] = line.split(':')
    if (user === name) return { uid: Number(uid), gid: Number(gid) }
  }
  throw new Error(`no user ${name} in /etc/passwd`)
}

/** True when the tests run as root (then daemons must be told which user to drop to). */
export function isRoot(): boolean {
  return process.getuid?.() === 0
}
