// The timeline of a dependency test: named phases (before, hung, stopped, garbage, back ...),
// and what the load client heard in each: the final reply of every attempt (the one after the
// message data, or a refusal before it) tallied by phase, with the slowest reply of the phase.
import type { LoadOptions } from './load.js'

type Heard = Parameters<NonNullable<LoadOptions['onReply']>>[0]

export class Phases<P extends string> {
  private now: P
  private readonly order: P[] = []
  private readonly tallies = new Map<P, Record<string, number>>()
  private readonly slowest = new Map<P, number>()
  private readonly since = new Map<P, number>()

  constructor(first: P) {
    this.now = first
    this.enter(first)
  }

  get current(): P {
    return this.now
  }

  enter(p: P): void {
    this.now = p
    if (!this.order.includes(p)) this.order.push(p)
    this.since.set(p, Date.now())
  }

  /** ms since the phase was entered (the last time). */
  elapsed(p: P = this.now): number {
    return Date.now() - (this.since.get(p) ?? Date.now())
  }

  /** For runLoad's onReply (several loads may share one timeline: `label` tells them apart). */
  listener(label = ''): (r: Heard) => void {
    return (r) => {
      const final = r.command === 'dot' || !/^(250|354)/.test(r.reply)
      if (!final) return
      const what = r.reply.startsWith('closed') ? 'no reply' : r.reply.slice(0, 9)
      const key = `${label}${r.command === 'dot' ? '' : `${r.command} `}${what}`
      const t = this.tallies.get(this.now) ?? {}
      t[key] = (t[key] ?? 0) + 1
      this.tallies.set(this.now, t)
      this.slowest.set(this.now, Math.max(this.slowest.get(this.now) ?? 0, r.ms))
    }
  }

  /** Replies heard in a phase: reply prefix -> count. */
  tally(p: P): Record<string, number> {
    return { ...this.tallies.get(p) }
  }

  /** How many replies of a phase match `re` (tested against the tally keys). */
  count(p: P, re: RegExp): number {
    return Object.entries(this.tally(p))
      .filter(([k]) => re.test(k))
      .reduce((n, [, v]) => n + v, 0)
  }

  /** One line for RELIABILITY.md: each phase, its replies and its slowest reply. */
  summary(): string {
    return this.order
      .map((p) => {
        const t = Object.entries(this.tally(p))
          .map(([k, v]) => `${k}… ×${v}`)
          .join(', ')
        return `${p}: ${t || 'no replies'} (slowest ${((this.slowest.get(p) ?? 0) / 1000).toFixed(1)} s)`
      })
      .join('; ')
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Polls `probe` every 200 ms until it is truthy; false after timeoutMs. */
export async function eventually(probe: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await probe()) return true
    if (Date.now() > deadline) return false
    await sleep(200)
  }
}
