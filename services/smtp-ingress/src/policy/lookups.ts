// The MX's own DNS lookups (blocklists, sender domains): one resolver on DNS_SERVERS, and answers
// kept for a minute so that a client opening many sessions is not looked up again for each.
import type { promises as dns } from 'node:dns'
import { resolverFor, type Config } from '@facteur/config'

/** The MX answers at RCPT: 2 s a try, where delivery and the filter can wait 3. */
export function policyResolver(config: Config): dns.Resolver {
  return resolverFor(config.outbound.dnsServers, 2000)
}

/** `lookup` memoised per key for `ttlMs`, at most `max` keys (oldest out first). It never rejects. */
export function recentAnswers<T>(
  lookup: (key: string) => Promise<T>,
  fallback: T,
  ttlMs = 60_000,
  max = 10_000,
): (key: string) => Promise<T> {
  const cache = new Map<string, { at: number; answer: Promise<T> }>()
  return (key) => {
    const now = Date.now()
    const hit = cache.get(key)
    if (hit && now - hit.at < ttlMs) return hit.answer
    const answer = lookup(key).catch(() => fallback)
    setBounded(cache, key, { at: now, answer }, max)
    return answer
  }
}

/** Sets `key` last in the map's order (Map keeps the order entries were set in); past `max` the first, the oldest, goes. */
export function setBounded<T>(map: Map<string, T>, key: string, value: T, max: number): void {
  map.delete(key)
  if (map.size >= max) map.delete(map.keys().next().value as string)
  map.set(key, value)
}
