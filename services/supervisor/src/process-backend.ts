// Process mode (`npm start`): every service is a child process; one that dies is restarted
// with backoff (1 s doubling to 30 s, reset after ten seconds of running), on the same ports.
import { fork, type ChildProcess } from 'node:child_process'
import type { Logger } from '@facteur/logging'
import type { Announcement } from '@facteur/lifecycle'
import { entryPoint, loopbackFor, type ServiceDef } from './services.js'
import type { PortsTable } from './ports-file.js'
import type { Backend, ServiceState } from './backend.js'

const BACKOFF_MIN = 1000
const BACKOFF_MAX = 30_000
const HEALTHY_AFTER = 10_000
const STOP_GRACE = 40_000
/** How long the services after a provider (the filter) wait for its announcement at most. */
const PROVIDER_WAIT = 30_000

export type ProcessBackend = Backend & { ports(): PortsTable }

export function startProcessBackend(opts: {
  defs: readonly ServiceDef[]
  logger: Logger
  onPorts: (ports: PortsTable) => void
  env?: NodeJS.ProcessEnv
}): ProcessBackend {
  const { logger } = opts
  let stopping = false
  const children = new Map<
    string,
    { def: ServiceDef; child: ChildProcess | null; state: ServiceState; backoff: number; timer?: NodeJS.Timeout }
  >()

  // Variables services give the ones started after them (FILTER_URL), and who waits for them.
  const provided: Record<string, string> = {}
  const waiting = new Map<string, () => void>()

  const portsTable = (): PortsTable => Object.fromEntries([...children.values()].map((c) => [c.def.name, c.state.ports]))

  const spawn = (name: string): void => {
    const c = children.get(name)
    if (!c || stopping) return
    const base = opts.env ?? process.env
    // libuv runs every fs call (fsync included) on 4 threads by default: more lets the fsyncs of
    // concurrent messages overlap, and the kernel commit them together. Read once, at the
    // child's start, so it is set here and not in the service.
    const env: NodeJS.ProcessEnv = { UV_THREADPOOL_SIZE: base.UV_THREADPOOL_SIZE ?? '32', ...base, ...provided, FACTEUR_SERVICE: name }
    // A restarted service binds the ports it had: clients and the ports file stay right.
    for (const [portName, variable] of Object.entries(c.def.ports)) {
      const known = c.state.ports[portName]
      if (known) env[variable] = String(known.port)
    }
    const child = fork(entryPoint(c.def), [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.execArgv })
    c.child = child
    c.state.pid = child.pid ?? null
    c.state.running = true
    c.state.state = 'running'
    c.state.exitCode = null
    c.state.startedAt = Date.now()
    child.on('message', (msg: Announcement) => {
      if (msg?.type !== 'listening') return
      c.state.ports[msg.name] = { address: msg.address, port: msg.port }
      opts.onPorts(portsTable())
      const p = c.def.provides
      if (p && msg.name === p.listener) {
        provided[p.variable] = p.value(msg.address, msg.port)
        waiting.get(name)?.()
      }
    })
    child.on('exit', (code, signal) => {
      c.state.running = false
      c.state.pid = null
      c.state.exitCode = code
      c.state.state = 'restarting'
      c.child = null
      if (stopping) return
      const ranFor = Date.now() - (c.state.startedAt ?? Date.now())
      if (ranFor > HEALTHY_AFTER) c.backoff = BACKOFF_MIN
      if (code === 78) {
        c.state.state = 'exited'
        logger.error('service has a configuration error, not restarting it', { child: name })
        waiting.get(name)?.()
        return
      }
      c.state.restarts++
      logger.warn('service exited, restarting', { child: name, code, signal, inMs: c.backoff, restarts: c.state.restarts })
      c.timer = setTimeout(() => spawn(name), c.backoff)
      c.backoff = Math.min(BACKOFF_MAX, c.backoff * 2)
    })
  }

  for (const def of opts.defs) {
    children.set(def.name, {
      def,
      child: null,
      backoff: BACKOFF_MIN,
      state: {
        name: def.name,
        state: 'starting',
        running: false,
        pid: null,
        exitCode: null,
        engineHealth: null,
        restarts: 0,
        startedAt: null,
        hasHealthz: true,
        baseUrl: null,
        ports: {},
      },
    })
  }
  // In order: a service that provides a variable (the filter's URL) is waited for, within
  // PROVIDER_WAIT, before the services after it start; the others start at once.
  void (async () => {
    for (const def of opts.defs) {
      if (stopping) return
      const announced = def.provides ? new Promise<void>((resolve) => waiting.set(def.name, resolve)) : null
      spawn(def.name)
      if (!announced) continue
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), PROVIDER_WAIT)))
      if (await Promise.race([announced.then(() => false), late]))
        logger.warn('service did not announce its listener in time, starting the others anyway', {
          child: def.name,
          listener: def.provides?.listener,
        })
      clearTimeout(timer)
      waiting.delete(def.name)
    }
  })()

  return {
    mode: 'process',
    refresh: async () =>
      [...children.values()].map((c) => {
        const health = c.state.ports.health
        return {
          ...c.state,
          ports: { ...c.state.ports },
          baseUrl: health && c.state.running ? `http://${loopbackFor(health.address)}:${health.port}` : null,
        }
      }),
    ports: portsTable,
    // The exit handler above starts it again, with its backoff, and counts the restart.
    async restart(name, reason) {
      const c = children.get(name)
      if (!c?.child) return
      logger.warn('killing service', { child: name, pid: c.child.pid, reason })
      c.child.kill('SIGKILL')
    },
    async stop() {
      stopping = true
      const waits: Promise<void>[] = []
      for (const c of children.values()) {
        clearTimeout(c.timer)
        const child = c.child
        if (!child) continue
        waits.push(
          new Promise((resolve) => {
            // A child that does not finish in time (stopped, hung) is killed: the supervisor never waits forever.
            const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE)
            child.once('exit', () => {
              clearTimeout(timer)
              resolve()
            })
          }),
        )
        child.kill('SIGTERM')
        child.kill('SIGCONT')
      }
      await Promise.all(waits)
    },
  }
}
