// The JSON form of a registry (prom-client's getMetricsAsJSON), as the supervisor reads it from
// each service's /metrics?format=json.

export type MetricFamily = {
  name: string
  help: string
  type: string
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[]
}

/** Checks the shape of a parsed /metrics?format=json body; drops what does not fit. */
export function parseSamples(body: unknown): MetricFamily[] {
  if (!Array.isArray(body)) return []
  return body.filter(
    (f): f is MetricFamily =>
      typeof f === 'object' && f !== null && typeof f.name === 'string' && typeof f.type === 'string' && Array.isArray(f.values),
  )
}
