// The appliance's counters: every service's /metrics?format=json added into the supervisor's
// registry, so one /metrics tells the whole appliance. A service that restarts (a new
// facteur_process_start_time_seconds) starts its counters from 0 again; the sums never go back.
import type { Counter, Gauge, Registry } from 'prom-client'
import type { MetricFamily } from '@facteur/metrics'

const START = 'facteur_process_start_time_seconds'

export type Aggregator = { add(source: string, families: readonly MetricFamily[]): void }

export function createAggregator(registry: Registry): Aggregator {
  const sources = new Map<string, { start: number; values: Map<string, number> }>()
  const latest = new Map<string, number>()
  return {
    add(source, families) {
      const start = families.find((f) => f.name === START)?.values[0]?.value ?? 0
      let seen = sources.get(source)
      if (!seen || seen.start !== start) sources.set(source, (seen = { start, values: new Map() }))
      for (const f of families) {
        if (f.name === START) continue
        const metric = registry.getSingleMetric(f.name)
        if (!metric) continue // a metric this supervisor does not know (a newer service)
        for (const v of f.values) {
          const labels = Object.fromEntries(Object.entries(v.labels).map(([k, x]) => [k, String(x)]))
          if (f.type === 'counter') {
            const key = `${f.name}${JSON.stringify(labels)}`
            const before = seen.values.get(key) ?? 0
            // A smaller value from the same process is an older answer arriving late: ignored.
            if (v.value > before) (metric as Counter).inc(labels, v.value - before)
            seen.values.set(key, Math.max(before, v.value))
          } else if (f.type === 'gauge' && f.name.endsWith('_timestamp_seconds')) {
            // A time stamp: the latest of all services'.
            const key = `${f.name}${JSON.stringify(labels)}`
            if (v.value > (latest.get(key) ?? 0)) {
              latest.set(key, v.value)
              ;(metric as Gauge).set(labels, v.value)
            }
          }
        }
      }
    },
  }
}
