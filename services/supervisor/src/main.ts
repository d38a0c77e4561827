// supervisor: starts the appliance's services as children (process mode) or finds the compose
// project's containers (docker mode), restarts the dead and the unhealthy, and serves the
// appliance's health (/health), counters (/metrics) and status page (/).
import { loadConfig, loadDotenv, exitOnConfigError } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { startHealthServer } from '@facteur/health'
import { announce, onShutdown } from '@facteur/lifecycle'
import { registry } from '@facteur/metrics'
import { openSpool, type Spool } from '@facteur/spool'
import { SERVICES } from './services.js'
import { startProcessBackend } from './process-backend.js'
import { startDockerBackend } from './docker-backend.js'
import { writePortsFile, type PortsTable } from './ports-file.js'
import { startWatchdog } from './watchdog.js'
import { queueDepthGauge } from './queue-depth.js'
import { startReports } from './report.js'
import { applianceHealth } from './appliance.js'
import { statusPage } from './status-page.js'
import type { Backend } from './backend.js'
import { dropPrivileges } from './privileges.js'

const SERVICE = 'supervisor'
loadDotenv()
const config = exitOnConfigError(SERVICE, () => loadConfig(process.env))
const logger = createLogger({ service: SERVICE, level: config.log.level, format: config.log.format })
if (config.supervisor.mode === 'docker') {
  const dropped = dropPrivileges(config)
  if (dropped) logger.info("running as the mail user, in the Docker socket's group", dropped)
  if (dropped && !dropped.socketAccess)
    logger.warn('the Docker socket is not readable and writable by its group: mount it, or use a socket proxy (DOCKER_HOST=tcp://...)')
}

try {
  let writing = Promise.resolve()
  let own: PortsTable = {}
  let children: PortsTable = {}
  const writePorts = (): void => {
    if (config.supervisor.mode === 'docker') return
    const table = { ...own, ...children }
    writing = writing
      .then(() => writePortsFile(config.supervisor.portsFile, table))
      .catch((err: unknown) => {
        logger.error('cannot write the ports file', { file: config.supervisor.portsFile, err: (err as Error).message })
      })
  }
  const backend: Backend & { project?: string } =
    config.supervisor.mode === 'docker'
      ? startDockerBackend({ config, logger })
      : startProcessBackend({
          defs: SERVICES.filter((s) => !s.when || s.when(config)),
          logger,
          onPorts: (ports) => {
            children = ports
            writePorts()
          },
        })
  const watchdog = startWatchdog({ backend, config: config.supervisor, logger })
  // The queue depth, from the spool itself (docker mode: the spool volume is mounted here too).
  const spool: Spool | null = await openSpool(config.spoolDir, { uid: config.mailbox.uid, gid: config.mailbox.gid }).catch(
    (err: unknown) => {
      logger.warn('cannot open the spool: the queue depth is unknown', { spoolDir: config.spoolDir, err: (err as Error).message })
      return null
    },
  )
  const queueDepth = queueDepthGauge(spool)
  // REPORT_INTERVAL: a summary to the postmaster every day, week or interval.
  const reports = startReports({ config, logger, spool, registry, queueDepth })

  const health = async () => {
    const reports = await watchdog.look()
    const reach = watchdog.reachable()
    return applianceHealth({
      mode: backend.mode,
      project: backend.project,
      reports,
      queueDepth: await queueDepth(),
      registry,
      error: reach.ok ? undefined : reach.error,
    })
  }
  const status = await startHealthServer({
    service: SERVICE,
    port: config.supervisor.port,
    host: config.supervisor.listen,
    checks: {
      [backend.mode === 'docker' ? 'docker' : 'children']: () => {
        const reach = watchdog.reachable()
        return reach.ok ? { status: 'ok' } : { status: 'fail', detail: reach.error }
      },
    },
    routes: async (req, res) => {
      const url = (req.url ?? '/').split('?')[0]
      if (req.method !== 'GET' || (url !== '/health' && url !== '/')) return false
      const h = await health()
      if (url === '/health') {
        res.writeHead(h.status === 'fail' ? 503 : 200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(h))
      } else {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
        res.end(statusPage(h, `Facteur ${config.hostname}`))
      }
      return true
    },
  })
  announce(logger, SERVICE, 'status', config.supervisor.listen, status.port)
  own = { supervisor: { status: { address: config.supervisor.listen, port: status.port } } }
  writePorts()

  onShutdown(
    logger,
    async () => {
      watchdog.stop()
      reports.stop()
      await backend.stop()
      const restarts = (await backend.refresh()).reduce((n, s) => n + s.restarts, 0)
      logger.info(backend.mode === 'docker' ? 'stopped watching' : 'all services stopped', { restarts })
      await status.close()
    },
    60_000,
  )
} catch (err) {
  logger.error(`cannot start: ${(err as Error).message}`)
  process.exit(1)
}
