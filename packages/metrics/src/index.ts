// metrics: the appliance's Prometheus counters (prom-client). Each service counts the outcome
// lines it logs (one per SMTP reply refused or message queued, per filter verdict, per delivery
// attempt), serves them at /metrics on its health port, and the supervisor sums them.
export { registry, countLogEvent, type LogEvent } from './metrics.js'
export { parseSamples, type MetricFamily } from './families.js'
