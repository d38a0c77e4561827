// The supervisor's view of the appliance: /health (pids, restarts), and killing a service.
import http from 'node:http'
import type { Appliance } from './appliance.js'

export type ServiceView = {
  name: string
  pid: number | null
  running: boolean
  restarts: number
  ports: Record<string, { port: number }>
  health: { status: string }
}
export type HealthView = { status: string; restarts: number; services: Record<string, ServiceView> }

export async function applianceHealth(a: Appliance): Promise<{ code: number; body: HealthView }> {
  const port = a.port('supervisor', 'status')
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/health', timeout: 5000 }, (res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.on('end', () => resolve({ code: res.statusCode ?? 0, body: JSON.parse(body) as HealthView }))
      })
      .on('error', reject)
  })
}

export async function servicePid(a: Appliance, service: string): Promise<number> {
  const deadline = Date.now() + 15_000
  for (;;) {
    const { body } = await applianceHealth(a)
    const pid = body.services[service]?.pid
    if (pid) return pid
    if (Date.now() > deadline) throw new Error(`${service} has no pid`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Waits until the supervisor reports `service` running with a pid other than `oldPid`. */
export async function waitForRestart(a: Appliance, service: string, oldPid: number, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const { body } = await applianceHealth(a)
    const s = body.services[service]
    if (s?.running && s.pid && s.pid !== oldPid && s.health?.status !== 'fail' && s.health?.status !== 'starting') return s.pid
    if (Date.now() > deadline) throw new Error(`${service} was not restarted: ${JSON.stringify(s)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

export async function httpGet(port: number, path: string): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.on('end', () => resolve({ code: res.statusCode ?? 0, body }))
      })
      .on('error', reject)
  })
}
