/** One recipient's result of one attempt; `reply` is an SMTP-style line for logs and DSNs. */
export type Outcome = {
  status: 'delivered' | 'deferred' | 'failed'
  reply: string
  /** For our log only: what `reply` leaves out for the sender's eyes (a mailbox's file names). */
  detail?: string
  /** Set when another host answered: its name (RFC 3464 §2.3.5 Remote-MTA) and whether it took the
   * DSN request on (it offered DSN, RFC 3461 §6.2), else a NOTIFY=SUCCESS gets our `relayed` notice. */
  remote?: { mta: string; dsn: boolean }
}
