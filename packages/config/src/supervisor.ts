// The supervisor's settings: process mode (children it starts) or docker mode (the compose
// project's containers it watches), how often it polls every /healthz, when it restarts a
// service, and where each service's health port is.
import path from 'node:path'
import { ConfigError, type EnvReader } from './env.js'
import type { Config } from './config.js'

export type SupervisorConfig = Readonly<{
  mode: 'process' | 'docker'
  /** The status page, /health and /metrics. */
  port: number
  listen: string
  portsFile: string
  /** How often every service's /healthz (and Docker's health state) is read. */
  pollIntervalMs: number
  /** Consecutive failed polls after which a running service is restarted. */
  unhealthyAfter: number
  /** Restarts of one service allowed within restartWindowMs; past it the supervisor gives up on it. */
  restartLimit: number
  restartWindowMs: number
  /** Docker mode: the compose project watched; empty: the supervisor's own container's project. */
  composeProject?: string
  /** Docker mode: the engine's API, unix:///var/run/docker.sock or tcp://HOST:PORT (a socket proxy). */
  docker: Readonly<{ socketPath: string } | { host: string; port: number }>
  /** REPORT_INTERVAL: how often a summary of the mail handled goes to REPORT_RECIPIENT; null: never. */
  reportIntervalMs: number | null
  /** REPORT_RECIPIENT: who gets it (POSTMASTER_ADDRESS by default). */
  reportRecipient: string
}>

export function loadSupervisorConfig(r: EnvReader, spoolDir: string, postmaster: string): SupervisorConfig {
  const project = r.optional('SUPERVISOR_COMPOSE_PROJECT')
  // Compose project names: lower-case letters, digits, dashes and underscores.
  if (project && !/^[a-z0-9][a-z0-9_-]*$/.test(project))
    throw new ConfigError('SUPERVISOR_COMPOSE_PROJECT', project, 'a compose project name (lower-case letters, digits, - and _)')
  const interval = r.duration('SUPERVISOR_POLL_INTERVAL', '10s')
  if (interval < 500) throw new ConfigError('SUPERVISOR_POLL_INTERVAL', r.raw('SUPERVISOR_POLL_INTERVAL'), 'a duration of at least 500ms')
  return Object.freeze({
    mode: r.oneOf('SUPERVISOR_MODE', ['process', 'docker'] as const, 'process'),
    port: r.port('SUPERVISOR_PORT', 8080),
    listen: r.string('SUPERVISOR_LISTEN', '127.0.0.1'),
    portsFile: r.string('PORTS_FILE', path.join(spoolDir, 'ports.json')),
    pollIntervalMs: interval,
    unhealthyAfter: r.int('SUPERVISOR_UNHEALTHY_AFTER', 3, 1, 1000),
    restartLimit: r.int('SUPERVISOR_RESTART_LIMIT', 5, 0, 1000),
    restartWindowMs: r.duration('SUPERVISOR_RESTART_WINDOW', '1h'),
    composeProject: project,
    docker: parseDockerHost(r.string('DOCKER_HOST', 'unix:///var/run/docker.sock')),
    reportIntervalMs: reportInterval(r),
    reportRecipient: r.address('REPORT_RECIPIENT', r.string('REPORT_RECIPIENT', postmaster)).toLowerCase(),
  })
}

/** REPORT_INTERVAL: off, daily, weekly, or a duration of at least a second (12h). */
function reportInterval(r: EnvReader): number | null {
  const text = r.string('REPORT_INTERVAL', 'off').toLowerCase()
  if (text === 'off') return null
  if (text === 'daily') return 86_400_000
  if (text === 'weekly') return 7 * 86_400_000
  const ms = /^\d+\s*(ms|s|m|h|d)?$/.test(text) ? r.duration('REPORT_INTERVAL', text) : -1
  if (ms < 1000) throw new ConfigError('REPORT_INTERVAL', r.raw('REPORT_INTERVAL'), 'off, daily, weekly or a duration of at least 1s (12h)')
  return ms
}

function parseDockerHost(text: string): SupervisorConfig['docker'] {
  const unix = /^unix:\/\/(\/.+)$/.exec(text)
  if (unix) return Object.freeze({ socketPath: unix[1] })
  const tcp = /^tcp:\/\/([^/:]+|\[[^\]]+\]):(\d{1,5})\/?$/.exec(text)
  if (tcp && Number(tcp[2]) <= 65535) return Object.freeze({ host: tcp[1].replace(/^\[|\]$/g, ''), port: Number(tcp[2]) })
  throw new ConfigError('DOCKER_HOST', text, 'unix:///var/run/docker.sock or tcp://HOST:PORT (a socket proxy; TLS is not supported)')
}

/**
 * Where each service answers GET /healthz: the port variable the service reads and the address
 * it listens on (HEALTH_LISTEN, or the filter's and the supervisor's own listeners). The image's
 * HEALTHCHECK and the supervisor both read this table.
 */
export function healthEndpoint(config: Config, service: string): { listen: string; port: number } | null {
  switch (service) {
    case 'smtp-ingress':
      return { listen: config.health.listen, port: config.health.ingressPort }
    case 'delivery':
      return { listen: config.health.listen, port: config.health.deliveryPort }
    case 'submission':
      return { listen: config.health.listen, port: config.submission.healthPort }
    case 'filter':
      return { listen: config.filter.listen, port: config.filter.port }
    case 'supervisor':
      return { listen: config.supervisor.listen, port: config.supervisor.port }
    default:
      return null
  }
}
