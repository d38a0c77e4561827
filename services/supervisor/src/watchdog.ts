// The restart policy. Every poll: a container that died (exit code other than 0, stopped on
// purpose, or 78, a configuration error no restart fixes) is started again; a running service
// whose /healthz (or Docker's HEALTHCHECK) fails SUPERVISOR_UNHEALTHY_AFTER polls in a row is
// restarted, since Docker itself never restarts an unhealthy container. Restarts of one service
// back off (10 s doubling to 5 min) and are bounded: past SUPERVISOR_RESTART_LIMIT within
// SUPERVISOR_RESTART_WINDOW the supervisor gives up on it and says so, until it is healthy again.
import { Counter, Gauge } from 'prom-client'
import type { SupervisorConfig } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import { registry } from '@facteur/metrics'
import type { Backend } from './backend.js'
import { createAggregator } from './aggregate.js'
import { observe, type Observation } from './observe.js'
import { probe as httpProbe, type Probe } from './probe.js'

export type ServiceReport = Observation & {
  /** Failed polls in a row. */
  failures: number
  lastRestart: { at: string; reason: string } | null
  /** Restarted SUPERVISOR_RESTART_LIMIT times within the window: left alone until healthy again. */
  gaveUp: boolean
}

export type Watchdog = {
  /** A fresh look at every service (for /health), without restart decisions. */
  look(): Promise<ServiceReport[]>
  /** One poll: a look, then the restarts it calls for. */
  tick(): Promise<ServiceReport[]>
  /** The backend answered the last poll (false: e.g. the Docker API is unreachable), and why not. */
  reachable(): { ok: boolean; error?: string }
  stop(): void
}

const BACKOFF_MIN = 10_000
const BACKOFF_MAX = 300_000
/** Healthy this long after its last restart, a service's backoff starts again from the minimum. */
const BACKOFF_RESET = 600_000

const restartsTotal = new Counter({
  name: 'facteur_restarts_total',
  help: "Restarts of each service: by the supervisor (died, or unhealthy too long), and by Docker's restart policy.",
  labelNames: ['service'],
  registers: [registry],
})
const up = new Gauge({
  name: 'facteur_service_up',
  help: 'Whether each service can do its job (1: ok or degraded, 0: failing, starting or stopped).',
  labelNames: ['service'],
  registers: [registry],
})

type Policy = {
  failures: number
  backoff: number
  nextAllowed: number
  times: number[]
  lastRestart: ServiceReport['lastRestart']
  gaveUp: boolean
  /** Failing only because of a dependency (logged once, not restarted). */
  waiting: boolean
  counted: number
}

export function startWatchdog(opts: {
  backend: Backend
  config: Pick<SupervisorConfig, 'pollIntervalMs' | 'unhealthyAfter' | 'restartLimit' | 'restartWindowMs'>
  logger: Logger
  probe?: Probe
  now?: () => number
  /** Start polling at once (false in tests that call tick() themselves). */
  autostart?: boolean
}): Watchdog {
  const { backend, config, logger } = opts
  const now = opts.now ?? Date.now
  const aggregator = createAggregator(registry)
  const policies = new Map<string, Policy>()
  let reach: { ok: boolean; error?: string } = { ok: true }
  const policy = (name: string): Policy => {
    let p = policies.get(name)
    if (!p)
      policies.set(
        name,
        (p = {
          failures: 0,
          backoff: BACKOFF_MIN,
          nextAllowed: 0,
          times: [],
          lastRestart: null,
          gaveUp: false,
          waiting: false,
          counted: -1,
        }),
      )
    return p
  }

  const look = async (): Promise<ServiceReport[]> => {
    let states
    try {
      states = await backend.refresh()
      reach = { ok: true }
    } catch (err) {
      if (reach.ok) logger.error("cannot read the services' state", { mode: backend.mode, err: (err as Error).message })
      reach = { ok: false, error: (err as Error).message }
      return []
    }
    const seen = await observe(states, { probe: opts.probe ?? httpProbe, aggregator, now: now() })
    return seen.map((o) => {
      const p = policy(o.name)
      // Restarts the backend reports (also Docker's own, and process mode's after an exit). At the
      // first look, process mode's children were all started by this supervisor: their restarts
      // so far are its own (a child that died while the others started); a container's earlier
      // restarts are not.
      if (p.counted >= 0 && o.restarts > p.counted) restartsTotal.inc({ service: o.name }, o.restarts - p.counted)
      else if (p.counted < 0) restartsTotal.inc({ service: o.name }, backend.mode === 'process' ? o.restarts : 0)
      p.counted = o.restarts
      up.set({ service: o.name }, o.health.status === 'ok' || o.health.status === 'degraded' ? 1 : 0)
      return { ...o, failures: p.failures, lastRestart: p.lastRestart, gaveUp: p.gaveUp }
    })
  }

  const decide = async (r: ServiceReport): Promise<void> => {
    const p = policy(r.name)
    const t = now()
    const healthy = r.health.status === 'ok' || r.health.status === 'degraded'
    if (healthy) {
      p.failures = 0
      p.waiting = false
      if (p.gaveUp) logger.info('service is healthy again', { child: r.name })
      p.gaveUp = false
      if (p.lastRestart && t - Date.parse(p.lastRestart.at) > BACKOFF_RESET) p.backoff = BACKOFF_MIN
      return
    }
    // exit 0: stopped on purpose (docker compose stop); 78: a configuration error.
    const died = r.state === 'exited' && r.exitCode !== 0 && r.exitCode !== 78
    // A failure that lies only in a dependency (clamd, spamd: checks naming one) is waited out:
    // restarting this service would cure nothing and drop the work it has in hand.
    const failing = Object.values(r.health.checks ?? {}).filter((c) => c.status === 'fail')
    const onlyDependencies = r.health.detail === undefined && failing.length > 0 && failing.every((c) => c.dependency)
    if (r.state === 'running' && r.health.status === 'fail') {
      if (onlyDependencies) {
        if (!p.waiting) logger.warn('service waits for a dependency', { child: r.name, dependencies: failing.map((c) => c.dependency) })
        p.failures = 0
        p.waiting = true
        return
      }
      p.failures++
    }
    p.waiting = false
    // Why, for the log and the status page: the health detail, else the failing checks.
    const why =
      r.health.detail ??
      Object.entries(r.health.checks ?? {})
        .filter(([, c]) => c.status === 'fail')
        .map(([name, c]) => `${name}${c.detail ? `: ${c.detail}` : ''}`)
        .join('; ')
    const reason = died
      ? `exited with code ${r.exitCode}`
      : p.failures >= config.unhealthyAfter
        ? `unhealthy for ${p.failures} polls in a row${why ? `: ${why}` : ''}`
        : null
    if (!reason) return
    p.times = p.times.filter((x) => t - x < config.restartWindowMs)
    if (p.times.length >= config.restartLimit) {
      if (!p.gaveUp)
        logger.error('giving up on service: too many restarts', {
          child: r.name,
          restarts: p.times.length,
          windowMs: config.restartWindowMs,
          reason,
        })
      p.gaveUp = true
      return
    }
    if (t < p.nextAllowed) return
    // Recorded before the restart is done (docker restart waits for the old process to stop):
    // /health shows the reason from the moment the backend counts the restart.
    const previous = p.lastRestart
    p.lastRestart = { at: new Date(t).toISOString(), reason }
    try {
      await backend.restart(r.name, reason)
    } catch (err) {
      p.lastRestart = previous
      logger.error('restart failed', { child: r.name, reason, err: (err as Error).message })
      return
    }
    p.times.push(t)
    p.nextAllowed = t + p.backoff
    logger.warn('restarted service', { child: r.name, reason, restartsInWindow: p.times.length, nextRestartNotBeforeMs: p.backoff })
    p.backoff = Math.min(BACKOFF_MAX, p.backoff * 2)
    p.failures = 0
  }

  let running: Promise<ServiceReport[]> | null = null
  const tick = (): Promise<ServiceReport[]> =>
    (running ??= (async () => {
      const reports = await look()
      for (const r of reports) await decide(r)
      return reports.map((r) => ({
        ...r,
        failures: policy(r.name).failures,
        lastRestart: policy(r.name).lastRestart,
        gaveUp: policy(r.name).gaveUp,
      }))
    })().finally(() => (running = null)))

  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const loop = (): void => {
    timer = setTimeout(() => {
      tick()
        .catch((err: unknown) => logger.error('poll failed', { err: (err as Error).message }))
        .finally(() => stopped || loop())
    }, config.pollIntervalMs)
  }
  if (opts.autostart !== false) loop()

  return {
    look,
    tick,
    reachable: () => reach,
    stop() {
      stopped = true
      clearTimeout(timer)
    },
  }
}
