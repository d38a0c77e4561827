// When to try again: like Postfix's queue manager, from QUEUE_RETRY_MIN doubling up to
// QUEUE_RETRY_MAX, until MAX_QUEUE_LIFETIME has passed since the message arrived.

export function nextRetry(attempts: number, q: { retryMinMs: number; retryMaxMs: number }, now = Date.now()): number {
  const delay = Math.min(q.retryMaxMs, q.retryMinMs * 2 ** Math.max(0, attempts - 1))
  return now + delay
}

export function expired(receivedAt: number, q: { lifetimeMs: number }, now = Date.now()): boolean {
  return now - receivedAt >= q.lifetimeMs
}
