// The machine's CPU time (/proc/stat), to tell a run the CPUs bounded from one that waited.
import fs from 'node:fs/promises'
import { run } from '../test/support/process.js'

/** One clock tick of /proc's process times, ms. */
export const CLOCK_TICK_MS = 1000 / Number((await run('getconf', ['CLK_TCK'])).stdout.trim() || 100)

/**
 * A process's /proc/PID/stat fields after the command in parentheses (state ppid ...; utime,
 * stime, cutime, cstime are [11] to [14]), or null once it has gone.
 */
export async function procStat(pid: number | string): Promise<string[] | null> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  return stat ? stat.slice(stat.lastIndexOf(')') + 2).split(' ') : null
}

/** The machine's CPU time so far, all CPUs: busy (not idle, not waiting for I/O) and in all. */
async function machineTicks(): Promise<{ busy: number; total: number }> {
  const [, ...fields] = (await fs.readFile('/proc/stat', 'utf8')).split('\n')[0].trim().split(/\s+/)
  // user nice system idle iowait irq softirq steal (guest time is counted in user already)
  const t = fields.slice(0, 8).map(Number)
  const total = t.reduce((a, b) => a + b, 0)
  return { busy: total - t[3] - t[4], total }
}

/** Starts measuring; the function returned tells how busy the machine's CPUs were since (0-1). */
export async function busyMeter(): Promise<() => Promise<number>> {
  const start = await machineTicks()
  return async () => {
    const now = await machineTicks()
    return (now.busy - start.busy) / Math.max(1, now.total - start.total)
  }
}
