// The hostile suite's figures: each test appends one JSON line to .results.jsonl (gitignored), and
// report.ts turns the lines into RELIABILITY.md. Memory is sampled from /proc while a test runs.
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { openSpool } from '@facteur/spool'
import type { Appliance } from '../support/appliance.js'
import { applianceHealth } from '../support/supervisor.js'

export const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '.results.jsonl')

export type Figures = {
  test: string
  load: string
  injected: string
  sent?: number
  accepted?: number
  delivered?: number
  lost?: number
  duplicated?: number
  restarts?: number
  /** Highest RSS of any one service process seen while the test ran, in MiB. */
  peakRssMiB?: number
  result: string
  durationS?: number
}

export function record(f: Figures): void {
  fs.appendFileSync(RESULTS, JSON.stringify(f) + '\n')
}

/** RSS of a process in KiB from /proc/PID/status, or 0 when it is gone. */
export async function rssKiB(pid: number): Promise<number> {
  try {
    const status = await fsp.readFile(`/proc/${pid}/status`, 'utf8')
    return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0)
  } catch {
    return 0
  }
}

/** Polls the services' pids (from /health) and their RSS every intervalMs; peak() is per service in MiB. */
export function sampleMemory(a: Appliance, intervalMs = 250): { peak(): Record<string, number>; max(): number; stop(): Promise<void> } {
  const peaks: Record<string, number> = {}
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      try {
        const { body } = await applianceHealth(a)
        for (const [name, s] of Object.entries(body.services)) {
          if (!s.pid) continue
          const kib = await rssKiB(s.pid)
          peaks[name] = Math.max(peaks[name] ?? 0, Math.round(kib / 1024))
        }
      } catch {
        // the supervisor is busy or stopping: try again
      }
      await new Promise((r) => setTimeout(r, intervalMs).unref())
    }
  })()
  return {
    peak: () => ({ ...peaks }),
    max: () => Math.max(0, ...Object.values(peaks)),
    async stop() {
      stopped = true
      await loop
    },
  }
}

/** The supervisor's restart count summed over services. */
export async function totalRestarts(a: Appliance): Promise<number> {
  const { body } = await applianceHealth(a)
  return Object.values(body.services).reduce((n, s) => n + s.restarts, 0)
}

/**
 * Waits (at most timeoutMs) until the spool holds no message, then a second more: what reads the
 * mailboxes or the MX's dump files afterwards sees no file half-written (smtp-sink creates its
 * dump at DATA and fills it as the data comes).
 */
export async function spoolSettled(spoolDir: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while ((await spoolEnvelopes(spoolDir)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250))
  await new Promise((r) => setTimeout(r, 1000))
}

/** Every envelope in the spool (queue/, active/, hold/). */
export async function spoolEnvelopes(
  spoolDir: string,
): Promise<{ id: string; sender: string; recipients: { address: string; status: string }[] }[]> {
  return (await (await openSpool(spoolDir)).list()).map((e) => e.envelope)
}

/** HOSTILE_SCALE=full runs the full loads; the default is what fits the CI budget. */
export const FULL = process.env.HOSTILE_SCALE === 'full'

/** startAppliance resolves once a service announced one listener; waits for the others it needs. */
export async function waitForListeners(a: Appliance, service: string, names: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const fresh = JSON.parse(await fsp.readFile(path.join(a.spoolDir, 'ports.json'), 'utf8')) as Appliance['ports']
      if (names.every((n) => fresh[service]?.[n])) {
        a.ports[service] = Object.assign(a.ports[service] ?? {}, fresh[service])
        return
      }
    } catch {
      // being rewritten
    }
    if (Date.now() > deadline) throw new Error(`${service} did not announce ${names.join(', ')}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
