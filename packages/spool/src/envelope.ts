// The envelope file: who sent, to whom, and where each recipient stands.
import { randomUUID } from 'node:crypto'

export type RecipientStatus = 'pending' | 'delivered' | 'deferred' | 'failed'

export type RecipientState = {
  /** The final address to deliver to (after alias expansion and sub-address removal). */
  address: string
  /** The address as the client gave it in RCPT TO (RFC 3461 §4.2 ORCPT). */
  original: string
  status: RecipientStatus
  attempts: number
  /** The last reply or error, e.g. `451 4.2.0 Mailbox locked`. */
  lastError?: string
  /** When the recipient was delivered or failed (ms since epoch). */
  doneAt?: number
  /** RFC 3461 §4.1 NOTIFY, when the client gave it. */
  notify?: string[]
  /** RFC 3461 §4.2 ORCPT as the client gave it (`rfc822;bob@example.org`), passed to the next hop. */
  orcpt?: string
}

export type Envelope = {
  version: 1
  id: string
  /** Reverse-path; '' is the null sender (RFC 5321 §4.5.5). */
  sender: string
  recipients: RecipientState[]
  receivedAt: number
  /** Earliest time of the next delivery attempt (ms since epoch). */
  nextAttempt: number
  size: number
  client: { ip: string; helo: string; tls: boolean; user?: string }
  /** Which service queued it: smtp-ingress, submission, bounce ... */
  source: string
  /** Header lines (CRLF-terminated) delivery puts in front of the stored message. */
  prepend?: string
  /** A Maildir++ folder local copies go to (`Junk` for the filter's junk verdict); mbox has none. */
  folder?: string
  /** RFC 3461 §4.3, §4.4 RET and ENVID. */
  dsn?: { ret?: 'FULL' | 'HDRS'; envid?: string }
  /** When a delay warning was sent (RFC 3464 `delayed`). */
  warnedAt?: number
}

/** Time-ordered, filename-safe, unique: 11 hex digits of milliseconds then 10 of randomness. */
export function newQueueId(now = Date.now()): string {
  // A v4 UUID's first 12 hex digits are random (Node draws them from a cached block of the
  // CSPRNG's output: cheaper than a randomBytes call each).
  const u = randomUUID()
  return now.toString(16).toUpperCase().padStart(11, '0') + (u.slice(0, 8) + u.slice(9, 11)).toUpperCase()
}

export const QUEUE_ID = /^[0-9A-F]{21}$/
