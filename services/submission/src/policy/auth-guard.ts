// Brute force against AUTH (RFC 4954 §4 leaves the defence to the server). Too many failures from
// one client address ban that address for a while; failures against one account slow that
// account's AUTH replies down, whoever asks, but the right password is still accepted from
// anywhere: an attacker can make the real user wait, never lock them out. The attempts being
// checked count against the ban too, so a brute force over many connections at once gets no more
// guesses than one that waits for each reply. An address that stands for many clients (the Docker
// bridge gateway behind the userland proxy) is banned per account instead: a stranger's failures
// there would otherwise lock every user out, and an attacker gets the same few guesses per account.
import { clientKey } from '@facteur/reception'

export type AuthGuardSettings = {
  banFailures: number
  banWindowMs: number
  banTimeMs: number
  delayMs: number
  delayMaxMs: number
}

/** Enough failures to reach any delay cap: the delay doubles per failure. */
const ACCOUNT_MEMORY = 32

export class AuthGuard {
  /** Failure times per client key within the window (at most banFailures of them). */
  private readonly clientFailures = new Map<string, number[]>()
  private readonly bans = new Map<string, number>()
  private readonly accountFailures = new Map<string, number[]>()
  /** Attempts being checked per client key, and the attempts waiting for one of them to end. */
  private readonly checking = new Map<string, { count: number; waiting: (() => void)[] }>()

  /** Bounds memory: past this many tracked keys, the oldest are forgotten. */
  private readonly maxTracked: number
  private readonly shared: (ip: string) => boolean

  constructor(
    private readonly settings: AuthGuardSettings,
    opts: {
      maxTracked?: number
      /** Addresses that stand for many clients: failures from them count per account. */
      shared?: (ip: string) => boolean
    } = {},
  ) {
    this.maxTracked = opts.maxTracked ?? 100_000
    this.shared = opts.shared ?? (() => false)
  }

  /** Whether a ban from this address holds only the account it was earned on. */
  perAccount(ip: string): boolean {
    return this.shared(ip)
  }

  /** Who failures and bans are counted for: the client (clientKey), or the account at a shared address. */
  private key(ip: string, account: string): string {
    return this.shared(ip) ? `${clientKey(ip)} ${account}` : clientKey(ip)
  }

  /** When the client's ban (for this account, at a shared address) ends (ms since epoch), or null. */
  bannedUntil(ip: string, account: string, now: number): number | null {
    const key = this.key(ip, account)
    const until = this.bans.get(key)
    if (until === undefined) return null
    if (until > now) return until
    this.bans.delete(key)
    return null
  }

  /**
   * Waits until an attempt from `ip` may have its password checked: the client's recent failures
   * and the attempts under way stay below banFailures, so the attempts that could still fail are
   * never more than the failures left before the ban. Resolves with the function that ends the
   * attempt (call it once its failure or success is recorded), or with null once the client is
   * banned. Attempts without a failure to come (a client of many users) wait for each other only
   * near the limit.
   */
  async admit(ip: string, account: string, clock: () => number = Date.now): Promise<(() => void) | null> {
    const key = this.key(ip, account)
    for (;;) {
      const now = clock()
      if (this.bannedUntil(ip, account, now) !== null) return null
      let slot = this.checking.get(key)
      if (!slot) this.checking.set(key, (slot = { count: 0, waiting: [] }))
      const failures = recent(this.clientFailures.get(key), now - this.settings.banWindowMs).length
      // With nothing under way, failures < banFailures (the last one allowed starts the ban).
      if (failures + slot.count < this.settings.banFailures) {
        slot.count++
        const s = slot
        let ended = false
        return () => {
          if (ended) return
          ended = true
          s.count--
          for (const wake of s.waiting.splice(0)) wake()
          if (s.count === 0 && this.checking.get(key) === s) this.checking.delete(key)
        }
      }
      await new Promise<void>((resolve) => slot.waiting.push(resolve))
    }
  }

  /** How long to hold back this account's next AUTH reply, success or not. */
  delayFor(account: string, now: number): number {
    const n = recent(this.accountFailures.get(account), now - this.settings.banWindowMs).length
    if (n === 0) return 0
    return Math.min(this.settings.delayMaxMs, this.settings.delayMs * 2 ** Math.min(n - 1, ACCOUNT_MEMORY))
  }

  /** Records a failure; returns true when it starts a ban of the client's address (or of the account there). */
  failed(ip: string, account: string, now: number): boolean {
    const since = now - this.settings.banWindowMs
    remember(
      this.accountFailures,
      account,
      [...recent(this.accountFailures.get(account), since), now].slice(-ACCOUNT_MEMORY),
      this.maxTracked,
    )
    const key = this.key(ip, account)
    const times = [...recent(this.clientFailures.get(key), since), now]
    if (times.length < this.settings.banFailures) {
      remember(this.clientFailures, key, times.slice(-this.settings.banFailures), this.maxTracked)
      return false
    }
    this.clientFailures.delete(key)
    remember(this.bans, key, now + this.settings.banTimeMs, this.maxTracked)
    return true
  }

  /** The right password: the account's slowdown ends. */
  succeeded(account: string): void {
    this.accountFailures.delete(account)
  }
}

function recent(times: number[] | undefined, since: number): number[] {
  return times ? times.filter((t) => t > since) : []
}

/** Sets a key, moving it to the end; drops the oldest keys past the bound. */
function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key)
  map.set(key, value)
  if (map.size <= max) return
  for (const oldest of map.keys()) {
    map.delete(oldest)
    if (map.size <= max) break
  }
}
