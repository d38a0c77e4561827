// The machine's CPU time (/proc/stat), to tell a run the CPUs bounded from one that waited.
import fs from 'node:fs/promises'

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
