// GET /healthz for every service: 200 {status: ok|degraded, checks} when it can do its job, 503 when not;
// GET /metrics: the service's outcome counters (@facteur/metrics) in Prometheus text.
export { startHealthServer, type HealthCheck, type HealthServer, type CheckResult } from './health.js'
