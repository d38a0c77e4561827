// What the supervisor watches, whichever way the services run: child processes it started
// (process mode) or the compose project's containers (docker mode). The watchdog and the pages
// see only this interface.

export type ServiceState = {
  name: string
  /**
   * running; starting (created, not yet started); restarting (the backend is bringing it back,
   * process mode); exited (not running and nobody restarts it: the watchdog decides from exitCode).
   */
  state: 'running' | 'starting' | 'restarting' | 'exited'
  running: boolean
  pid: number | null
  /** Docker mode: the container (short id). */
  container?: string
  exitCode: number | null
  /** Docker's HEALTHCHECK verdict (docker mode); null without one. */
  engineHealth: 'healthy' | 'unhealthy' | 'starting' | null
  /** Restarts done so far: by the supervisor, and (docker mode) by Docker's restart policy. */
  restarts: number
  startedAt: number | null
  /** The service serves GET /healthz (the sidecars do not: Docker's HEALTHCHECK speaks for them). */
  hasHealthz: boolean
  /** Where GET /healthz and /metrics answer (http://HOST:PORT); null: none (the sidecars, or not listening yet). */
  baseUrl: string | null
  ports: Record<string, { address: string; port: number }>
}

export type Backend = {
  readonly mode: 'process' | 'docker'
  /** Re-reads every service's state (docker mode: lists and inspects the containers). */
  refresh(): Promise<ServiceState[]>
  /** Restarts one service (kills and starts it again); resolves once that was asked for. */
  restart(name: string, reason: string): Promise<void>
  stop(): Promise<void>
}
