// One look at every service: the backend's state (process or container), its /healthz, Docker's
// health verdict, and its counters (/metrics?format=json, added into the supervisor's registry).
import type { CheckResult } from '@facteur/health'
import { parseSamples } from '@facteur/metrics'
import type { ServiceState } from './backend.js'
import type { Aggregator } from './aggregate.js'
import type { Probe } from './probe.js'

export type ServiceHealth = { status: 'ok' | 'degraded' | 'fail' | 'starting'; checks?: Record<string, CheckResult>; detail?: string }
export type Observation = ServiceState & { health: ServiceHealth }

const PROBE_TIMEOUT = 3000
/** A service without a Docker HEALTHCHECK verdict yet is "starting" this long after it started. */
const START_GRACE = 20_000

export async function observe(
  states: readonly ServiceState[],
  deps: { probe: Probe; aggregator: Aggregator; now?: number },
): Promise<Observation[]> {
  const now = deps.now ?? Date.now()
  return Promise.all(
    states.map(async (s): Promise<Observation> => {
      const starting = s.engineHealth === 'starting' || (s.engineHealth === null && s.startedAt !== null && now - s.startedAt < START_GRACE)
      const fromEngine = (): ServiceHealth =>
        s.engineHealth === 'unhealthy'
          ? { status: 'fail', detail: 'Docker HEALTHCHECK: unhealthy' }
          : s.engineHealth === 'starting'
            ? { status: 'starting' }
            : { status: 'ok', detail: s.engineHealth ? 'Docker HEALTHCHECK: healthy' : 'running (no health endpoint)' }
      let health: ServiceHealth
      if (s.state === 'exited')
        health = {
          status: 'fail',
          detail:
            s.exitCode === 78
              ? 'configuration error (exit 78): see its log'
              : s.exitCode === 0
                ? 'stopped'
                : `exited with code ${s.exitCode}`,
        }
      else if (s.state === 'restarting' && s.exitCode === 78)
        health = { status: 'fail', detail: "configuration error (exit 78): see its log; Docker's restart policy retries it" }
      else if (s.state !== 'running') health = { status: 'starting', detail: s.state }
      // No endpoint to ask: a sidecar (Docker's verdict), or a service not listening yet.
      else if (!s.baseUrl) health = s.engineHealth !== null || !s.hasHealthz ? fromEngine() : { status: 'starting' }
      else {
        const [h, m] = await Promise.allSettled([
          deps.probe(`${s.baseUrl}/healthz`, PROBE_TIMEOUT),
          deps.probe(`${s.baseUrl}/metrics?format=json`, PROBE_TIMEOUT),
        ])
        if (m.status === 'fulfilled' && m.value.code === 200)
          deps.aggregator.add(`${s.name}:${s.container ?? s.pid}`, parseSamples(m.value.body))
        if (h.status === 'rejected')
          health = starting
            ? { status: 'starting', detail: (h.reason as Error).message }
            : { status: 'fail', detail: (h.reason as Error).message }
        else {
          const body = h.value.body as { status?: string; checks?: Record<string, CheckResult> }
          const status = body.status === 'ok' || body.status === 'degraded' ? body.status : 'fail'
          health = {
            status: status === 'fail' && starting ? 'starting' : status,
            checks: body.checks,
            ...(h.value.code !== 200 && status !== 'fail' ? { detail: `HTTP ${h.value.code}` } : {}),
          }
          if (h.value.code !== 200 && health.status !== 'starting') health.status = 'fail'
          // Docker's verdict counts too: its HEALTHCHECK sees the service from inside the container.
          if (s.engineHealth === 'unhealthy' && health.status !== 'fail')
            health = { ...health, status: 'fail', detail: 'Docker HEALTHCHECK: unhealthy' }
        }
      }
      return { ...s, health }
    }),
  )
}
