// supervisor: starts (process mode) the appliance's services, restarts the dead, writes the
// ports file and serves the appliance's health.
import http from 'node:http'
import { loadConfig, loadDotenv, exitOnConfigError } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { startHealthServer } from '@facteur/health'
import { announce, onShutdown } from '@facteur/lifecycle'
import { SERVICES } from './services.js'
import { startProcessBackend } from './process-backend.js'
import { writePortsFile, type PortsTable } from './ports-file.js'

const SERVICE = 'supervisor'
loadDotenv()
const config = exitOnConfigError(SERVICE, () => loadConfig(process.env))
const logger = createLogger({ service: SERVICE, level: config.log.level, format: config.log.format })

try {
  let writing = Promise.resolve()
  let own: PortsTable = {}
  let children: PortsTable = {}
  const writePorts = (): void => {
    const table = { ...own, ...children }
    writing = writing.then(() => writePortsFile(config.supervisor.portsFile, table)).catch((err: unknown) => {
      logger.error('cannot write the ports file', { file: config.supervisor.portsFile, err: (err as Error).message })
    })
  }
  const backend = startProcessBackend({
    defs: SERVICES.filter((s) => !s.when || s.when(config)),
    logger,
    onPorts: (ports) => {
      children = ports
      writePorts()
    },
  })

  const serviceHealth = async (port: number | undefined): Promise<unknown> => {
    if (!port) return { status: 'starting' }
    return new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 2000 }, (res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.on('end', () => {
          try {
            resolve(JSON.parse(body))
          } catch {
            resolve({ status: 'fail', detail: `HTTP ${res.statusCode}` })
          }
        })
      })
      req.on('timeout', () => req.destroy(new Error('timeout')))
      req.on('error', (err) => resolve({ status: 'fail', detail: err.message }))
    })
  }

  const status = await startHealthServer({
    service: SERVICE,
    port: config.supervisor.port,
    host: config.supervisor.listen,
    checks: { children: () => ({ status: 'ok' }) },
    routes: async (req, res) => {
      if (req.url !== '/health') return false
      const services: Record<string, unknown> = {}
      for (const s of backend.states()) services[s.name] = { ...s, health: await serviceHealth(s.ports.health?.port) }
      const all = Object.values(services) as { running: boolean; health: { status: string } }[]
      const overall = all.some((s) => !s.running || s.health.status === 'fail') ? 'fail' : all.some((s) => s.health.status === 'degraded') ? 'degraded' : 'ok'
      res.writeHead(overall === 'fail' ? 503 : 200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ status: overall, services, restarts: all.reduce((n, s) => n + (s as unknown as { restarts: number }).restarts, 0) }))
      return true
    },
  })
  announce(logger, SERVICE, 'status', config.supervisor.listen, status.port)
  own = { supervisor: { status: { address: config.supervisor.listen, port: status.port } } }
  writePorts()

  onShutdown(logger, async () => {
    await backend.stop()
    const restarts = backend.states().reduce((n, s) => n + s.restarts, 0)
    logger.info('all services stopped', { restarts })
    await status.close()
  }, 60_000)
} catch (err) {
  logger.error(`cannot start: ${(err as Error).message}`)
  process.exit(1)
}
