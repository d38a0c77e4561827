// Greylisting (RFC 6647, GREYLIST_DELAY): the first attempt of a (client network, sender,
// recipient) triplet is deferred with 451 4.7.1; the same triplet retried after the delay and
// within two days passes, and then keeps passing for 35 days from its last use. A client network
// that has passed 5 triplets passes everything (postgrey's auto-whitelist: mailing lists, whose
// senders change with every message). Networks are IPv4 /24 and IPv6 /64, so that a sender's
// pool of outgoing servers counts as one (RFC 6647 §4.1). An address that stands for many clients
// (the Docker gateway, SHARED_CLIENT_ADDRESSES) is never whitelisted as a whole.
//
// The state lives in memory and is saved to SPOOL_DIR/greylist.json once a minute and at stop
// (written whole, then renamed): a crash forgets at most the last minute, which only defers some
// mail once more. It is a cache of who retried, never mail.
import fs from 'node:fs/promises'
import { isIP } from 'node:net'
import { inNetworks, type Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import { SmtpError } from '@facteur/smtp-error'
import { clientKey } from '@facteur/reception'
import { setBounded } from './lookups.js'

const DAY = 86_400_000
export const RETRY_WINDOW_MS = 2 * DAY
export const PASSED_FOR_MS = 35 * DAY
export const WHITELIST_AFTER = 5
const MAX_ENTRIES = 200_000
const SAVE_EVERY_MS = 60_000

/** first: the first attempt; passed: the last time the triplet (or the network) passed. */
type Triplet = { first: number; passed?: number }
type Network = { passes: number; last: number }
type Saved = { version: 1; triplets: [string, Triplet][]; networks: [string, Network][] }

export class Greylist {
  private readonly triplets = new Map<string, Triplet>()
  private readonly networks = new Map<string, Network>()
  private timer: NodeJS.Timeout | undefined
  private dirty = false

  constructor(
    private readonly opts: {
      delayMs: number
      file: string
      logger: Logger
      shared: (ip: string) => boolean
      /** GREYLIST_EXEMPT: a client or sender never greylisted. */
      exempt?: (ip: string, sender: string) => boolean
    },
  ) {}

  /** The refusal of this recipient for now, or null when the triplet (or its network) passes. */
  check(ip: string, sender: string, recipient: string, now = Date.now()): SmtpError | null {
    if (this.opts.exempt?.(ip, sender)) return null
    const net = network(ip)
    const known = this.networks.get(net)
    if (known && known.passes >= WHITELIST_AFTER && now - known.last < PASSED_FOR_MS && !this.opts.shared(ip)) {
      known.last = now
      this.dirty = true
      return null
    }
    const key = `${net} ${normalSender(sender)} ${recipient.toLowerCase()}`
    const seen = this.triplets.get(key)
    if (seen?.passed !== undefined && now - seen.passed < PASSED_FOR_MS) {
      seen.passed = now
      this.dirty = true
      return null
    }
    if (!seen || seen.passed !== undefined || now - seen.first > RETRY_WINDOW_MS) {
      // New, or forgotten: the retry window or the pass ran out.
      this.remember(key, { first: now })
      return this.defer(this.opts.delayMs)
    }
    const wait = seen.first + this.opts.delayMs - now
    if (wait > 0) return this.defer(wait)
    seen.passed = now
    const counted = known && now - known.last < PASSED_FOR_MS ? known : { passes: 0, last: now }
    setBounded(this.networks, net, { passes: counted.passes + 1, last: now }, MAX_ENTRIES)
    this.dirty = true
    return null
  }

  private defer(ms: number): SmtpError {
    const s = Math.ceil(ms / 1000)
    return new SmtpError(451, '7.1', `Greylisted, try again in ${s} second${s === 1 ? '' : 's'}`)
  }

  private remember(key: string, entry: Triplet): void {
    setBounded(this.triplets, key, entry, MAX_ENTRIES)
    this.dirty = true
  }

  /** Reads the saved state (a missing or unreadable file: start empty) and saves once a minute. */
  async open(): Promise<this> {
    try {
      const saved = JSON.parse(await fs.readFile(this.opts.file, 'utf8')) as Saved
      if (saved.version !== 1) throw new Error(`unknown version ${String(saved.version)}`)
      for (const [k, v] of saved.triplets.slice(-MAX_ENTRIES)) this.triplets.set(k, v)
      for (const [k, v] of saved.networks) this.networks.set(k, v)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.opts.logger.warn('greylist state not read: starting empty', { file: this.opts.file, err: (err as Error).message })
    }
    this.timer = setInterval(() => void this.save(), SAVE_EVERY_MS).unref()
    return this
  }

  /** Writes the state without what has run out. */
  async save(now = Date.now()): Promise<void> {
    if (!this.dirty) return
    this.dirty = false
    const live = (t: Triplet): boolean => (t.passed !== undefined ? now - t.passed < PASSED_FOR_MS : now - t.first < RETRY_WINDOW_MS)
    for (const [k, t] of this.triplets) if (!live(t)) this.triplets.delete(k)
    for (const [k, n] of this.networks) if (now - n.last >= PASSED_FOR_MS) this.networks.delete(k)
    const saved: Saved = { version: 1, triplets: [...this.triplets], networks: [...this.networks] }
    const tmp = `${this.opts.file}.tmp`
    try {
      await fs.writeFile(tmp, JSON.stringify(saved))
      await fs.rename(tmp, this.opts.file)
    } catch (err) {
      this.dirty = true
      this.opts.logger.warn('greylist state not saved', { file: this.opts.file, err: (err as Error).message })
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    await this.save()
  }
}

/** IPv4 /24, IPv6 /64 (clientKey). */
function network(ip: string): string {
  const key = clientKey(ip)
  return isIP(key) === 4 ? key.split('.').slice(0, 3).join('.') : key
}

/**
 * The sender as postgrey keys it: lower case, without a sub-address, digits runs as '#', so that
 * VERP and per-message bounce addresses of one list count as one sender.
 */
function normalSender(sender: string): string {
  const at = sender.lastIndexOf('@')
  if (at < 0) return sender.toLowerCase()
  const local = sender.slice(0, at).toLowerCase().replace(/\+.*$/, '').replace(/\d+/g, '#')
  return `${local}@${sender.slice(at + 1).toLowerCase()}`
}

/** GREYLIST_EXEMPT as a test: the client in its networks, or the sender's domain one of its domains or below one. */
export function exemptFrom(exempt: Config['greylistExempt']): (ip: string, sender: string) => boolean {
  return (ip, sender) => {
    if (inNetworks(exempt.networks, ip)) return true
    const domain = sender.slice(sender.lastIndexOf('@') + 1).toLowerCase()
    return sender !== '' && exempt.domains.some((d) => domain === d || domain.endsWith(`.${d}`))
  }
}
