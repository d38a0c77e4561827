import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { registry } from '@facteur/metrics'

/**
 * ok: working; degraded: working without an optional part (say which in detail); fail: cannot work.
 * `dependency` names another component whose failure this check reports (a sidecar such as clamd,
 * a resolver): the service still answers 503, but the supervisor does not restart it, since a
 * restart of this service cures nothing there.
 */
export type CheckResult = { status: 'ok' | 'degraded' | 'fail'; detail?: string; dependency?: string }
export type HealthCheck = () => CheckResult | Promise<CheckResult>

export type HealthServer = { port: number; close(): Promise<void>; evaluate(): Promise<HealthReport> }
type HealthReport = { status: 'ok' | 'degraded' | 'fail'; service: string; checks: Record<string, CheckResult> }

export async function startHealthServer(opts: {
  service: string
  port: number
  host: string
  checks: Record<string, HealthCheck>
  /** Extra routes (the filter's API, the supervisor's pages). Return false to fall through to 404. */
  routes?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>
  /** Largest request header block (Node's default is 16 KiB; the filter's envelope header can be longer). */
  maxHeaderSize?: number
}): Promise<HealthServer> {
  const evaluate = async (): Promise<HealthReport> => {
    const checks: Record<string, CheckResult> = {}
    for (const [name, check] of Object.entries(opts.checks)) {
      try {
        checks[name] = await check()
      } catch (err) {
        checks[name] = { status: 'fail', detail: (err as Error).message }
      }
    }
    const all = Object.values(checks)
    const status = all.some((c) => c.status === 'fail') ? 'fail' : all.some((c) => c.status === 'degraded') ? 'degraded' : 'ok'
    return { status, service: opts.service, checks }
  }
  const server = http.createServer({ maxHeaderSize: opts.maxHeaderSize }, (req, res) => {
    void (async () => {
      try {
        if (req.method === 'GET' && req.url?.split('?')[0] === '/healthz') {
          const report = await evaluate()
          res.writeHead(report.status === 'fail' ? 503 : 200, { 'content-type': 'application/json' })
          res.end(JSON.stringify(report))
          return
        }
        // The service's outcome counters (@facteur/metrics): Prometheus text, or JSON for the supervisor.
        if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
          const json = new URL(req.url, 'http://x').searchParams.get('format') === 'json'
          const body = json ? JSON.stringify(await registry.getMetricsAsJSON()) : await registry.metrics()
          res.writeHead(200, { 'content-type': json ? 'application/json' : registry.contentType })
          res.end(body)
          return
        }
        if (opts.routes && (await opts.routes(req, res))) return
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
      } catch (err) {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' })
        res.end(`error: ${(err as Error).message}\n`)
      }
    })()
  })
  server.keepAliveTimeout = 5000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => resolve())
  })
  return {
    port: (server.address() as AddressInfo).port,
    evaluate,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
