// GET /health: one JSON document for the whole appliance, from the watchdog's latest look, the
// queue depth and the summed counters. 200 when it can take and deliver mail (ok or degraded),
// 503 when a service fails.
import type { Registry } from 'prom-client'
import type { ServiceReport } from './watchdog.js'

export type Counters = {
  received: number
  rejected: number
  delivered: number
  deferred: number
  bounced: number
  authFailures: number
  virusFound: number
  spam: number
  restarts: number
}

export type ApplianceHealth = {
  status: 'ok' | 'degraded' | 'fail'
  mode: 'process' | 'docker'
  project?: string
  checkedAt: string
  services: Record<string, Omit<ServiceReport, 'name'>>
  queue: { depth: number | null }
  lastDelivery: string | null
  /** Restarts of every service so far (see services.*.restarts). */
  restarts: number
  counters: Counters
  /** Why the services could not be read (the Docker API unreachable ...). */
  error?: string
}

export async function applianceHealth(input: {
  mode: 'process' | 'docker'
  project?: string
  reports: readonly ServiceReport[]
  queueDepth: number | null
  registry: Registry
  error?: string
}): Promise<ApplianceHealth> {
  const { reports } = input
  const statuses = reports.map((r) => r.health.status)
  const status =
    input.error || statuses.includes('fail') || reports.length === 0
      ? 'fail'
      : statuses.some((s) => s === 'degraded' || s === 'starting')
        ? 'degraded'
        : 'ok'
  const families = await input.registry.getMetricsAsJSON()
  const sum = (name: string, match: Record<string, string> = {}): number =>
    (families.find((f) => f.name === name)?.values ?? [])
      .filter((v) => Object.entries(match).every(([k, x]) => v.labels[k] === x))
      .reduce((n, v) => n + v.value, 0)
  const last = sum('facteur_last_delivery_timestamp_seconds')
  return {
    status,
    mode: input.mode,
    ...(input.project ? { project: input.project } : {}),
    checkedAt: new Date().toISOString(),
    services: Object.fromEntries(reports.map(({ name, ...rest }) => [name, rest])),
    queue: { depth: input.queueDepth },
    lastDelivery: last > 0 ? new Date(last * 1000).toISOString() : null,
    restarts: reports.reduce((n, r) => n + r.restarts, 0),
    counters: {
      received: sum('facteur_messages_received_total'),
      rejected: sum('facteur_messages_rejected_total'),
      delivered: sum('facteur_deliveries_total', { outcome: 'delivered' }),
      deferred: sum('facteur_deliveries_total', { outcome: 'deferred' }),
      bounced: sum('facteur_deliveries_total', { outcome: 'bounced' }),
      authFailures: sum('facteur_auth_failures_total'),
      virusFound: sum('facteur_virus_verdicts_total', { result: 'infected' }),
      spam: sum('facteur_spam_verdicts_total', { result: 'spam' }),
      restarts: sum('facteur_restarts_total'),
    },
    ...(input.error ? { error: input.error } : {}),
  }
}
