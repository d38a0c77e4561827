/** One recipient's result of one attempt; `reply` is an SMTP-style line for logs and DSNs. */
export type Outcome = { status: 'delivered' | 'deferred' | 'failed'; reply: string }
