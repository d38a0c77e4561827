// Docker mode: the services are the containers of one compose project, found by their compose
// labels through the Docker API (dockerode); restarting one is `docker restart` (or `start` for
// one that died). Docker's own HEALTHCHECK verdict is read with each service's /healthz.
import fs from 'node:fs/promises'
import os from 'node:os'
import Docker from 'dockerode'
import { healthEndpoint, type Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import type { Backend, ServiceState } from './backend.js'

const PROJECT = 'com.docker.compose.project'
const SERVICE = 'com.docker.compose.service'
const NUMBER = 'com.docker.compose.container-number'
const ONEOFF = 'com.docker.compose.oneoff'
/** Seconds a restarted container gets to stop (SIGTERM) before SIGKILL. */
const STOP_TIMEOUT = 10

export type DockerBackend = Backend & { readonly project: string | undefined }

export function startDockerBackend(opts: { config: Config; logger: Logger; docker?: Docker }): DockerBackend {
  const { config, logger } = opts
  const docker = opts.docker ?? new Docker(config.supervisor.docker)
  const restarts = new Map<string, number>()
  const ids = new Map<string, string>()
  // Found on the first refresh that reaches the Docker API (an unreachable API is retried every poll).
  let found: { project: string; self: Docker.ContainerInspectInfo | null; networks: Set<string> } | null = null
  const where =
    'socketPath' in config.supervisor.docker
      ? config.supervisor.docker.socketPath
      : `tcp://${config.supervisor.docker.host}:${config.supervisor.docker.port}`

  const discover = async (): Promise<NonNullable<typeof found>> => {
    if (found) return found
    let self: Docker.ContainerInspectInfo | null
    try {
      self = await ownContainer(docker)
      if (!self) await docker.ping()
    } catch (err) {
      throw new Error(`cannot reach the Docker API at ${where}: ${(err as Error).message}`, { cause: err })
    }
    const project = config.supervisor.composeProject ?? self?.Config.Labels?.[PROJECT]
    if (!project)
      throw new Error(
        'cannot tell which compose project to watch: the supervisor is not in a compose container; set SUPERVISOR_COMPOSE_PROJECT',
      )
    // Health endpoints are reached at the container's address on a network we share with it.
    const networks = new Set(Object.values(self?.NetworkSettings.Networks ?? {}).map((n) => n.NetworkID))
    logger.info('watching compose project', { project, docker: where })
    return (found = { project, self, networks })
  }

  const refresh = async (): Promise<ServiceState[]> => {
    const { project, self, networks: ownNetworks } = await discover()
    const list = await docker.listContainers({ all: true, filters: { label: [`${PROJECT}=${project}`] } })
    const mine = list.filter((c) => c.Labels[ONEOFF] !== 'True' && c.Id !== self?.Id && c.Labels[SERVICE])
    const perService = new Map<string, number>()
    for (const c of mine) perService.set(c.Labels[SERVICE], (perService.get(c.Labels[SERVICE]) ?? 0) + 1)
    const states = await Promise.all(
      mine.map(async (c): Promise<ServiceState | null> => {
        const service = c.Labels[SERVICE]
        const name = (perService.get(service) ?? 0) > 1 ? `${service}-${c.Labels[NUMBER] ?? c.Id.slice(0, 12)}` : service
        let info: Docker.ContainerInspectInfo
        try {
          info = await docker.getContainer(c.Id).inspect()
        } catch {
          return null // removed between the list and the inspect
        }
        ids.set(name, c.Id)
        const s = info.State
        const state: ServiceState['state'] = s.Running
          ? s.Restarting
            ? 'restarting'
            : 'running'
          : s.Restarting
            ? 'restarting'
            : s.Status === 'created'
              ? 'starting'
              : 'exited'
        const health = s.Health?.Status
        const endpoint = healthEndpoint(config, service)
        const address = Object.values(info.NetworkSettings.Networks ?? {}).find(
          (n) => ownNetworks.has(n.NetworkID) && n.IPAddress,
        )?.IPAddress
        return {
          name,
          state,
          running: state === 'running',
          pid: s.Pid || null,
          container: c.Id.slice(0, 12),
          // The last exit code also while Docker's restart policy brings it back.
          exitCode: state === 'exited' || state === 'restarting' ? s.ExitCode : null,
          engineHealth: health === 'healthy' || health === 'unhealthy' || health === 'starting' ? health : null,
          restarts: (restarts.get(name) ?? 0) + info.RestartCount,
          startedAt: s.StartedAt && !s.StartedAt.startsWith('0001') ? Date.parse(s.StartedAt) : null,
          hasHealthz: endpoint !== null,
          // network_mode: host, or no shared network: Docker's health state is all we read.
          baseUrl: endpoint && address && state === 'running' ? `http://${address}:${endpoint.port}` : null,
          ports: endpoint ? { health: { address: address ?? '', port: endpoint.port } } : {},
        }
      }),
    )
    return states.filter((s): s is ServiceState => s !== null).sort((a, b) => a.name.localeCompare(b.name))
  }

  return {
    mode: 'docker',
    get project() {
      return found?.project
    },
    refresh,
    async restart(name, reason) {
      const id = ids.get(name)
      if (!id) throw new Error(`no container for ${name}`)
      const container = docker.getContainer(id)
      const running = (await container.inspect()).State.Running
      restarts.set(name, (restarts.get(name) ?? 0) + 1)
      logger.warn(running ? 'restarting container' : 'starting container', { child: name, container: id.slice(0, 12), reason })
      if (running) await container.restart({ t: STOP_TIMEOUT })
      else await container.start()
    },
    async stop() {
      // The containers belong to compose: they outlive the supervisor.
    },
  }
}

/** The supervisor's own container: by its host name (compose's default is the short id), else from /proc/self/mountinfo. */
async function ownContainer(docker: Docker): Promise<Docker.ContainerInspectInfo | null> {
  const candidates = [os.hostname()]
  const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '')
  const m = /\/containers\/([0-9a-f]{64})\//.exec(mountinfo)
  if (m) candidates.push(m[1])
  for (const id of candidates) {
    try {
      return await docker.getContainer(id).inspect()
    } catch {
      // not a container name or id
    }
  }
  return null
}
