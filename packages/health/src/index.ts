// GET /healthz for every service: 200 {status: ok|degraded, checks} when it can do its job, 503 when not.
export { startHealthServer, type HealthCheck, type HealthServer, type CheckResult } from './health.js'
