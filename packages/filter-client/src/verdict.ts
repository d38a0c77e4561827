// The filter's HTTP API as data: what a caller sends with the message, what it gets back.
// services/filter/README.md describes the same contract for people.

/** The SMTP envelope of the message, sent as JSON in the X-Facteur-Envelope request header. */
export type FilterEnvelope = {
  /** inbound: mail from the internet (smtp-ingress); outbound: an authenticated user's (submission). */
  direction: 'inbound' | 'outbound'
  /** The client's IP address, as the SMTP server saw it. */
  ip: string
  /**
   * The client came through a proxy that hides its address (smtp-ingress: Docker's userland
   * proxy, SHARED_CLIENT_ADDRESSES): `ip` is the proxy's, shared by every such client. Nothing that judges the client by its address
   * (SPF) can be checked.
   */
  proxied?: true
  /** What the client said in EHLO/HELO. */
  helo: string
  /** MAIL FROM; '' is the null reverse-path. */
  sender: string
  /** RCPT TO, as the client gave them (before alias expansion). */
  recipients: string[]
  /** The authenticated user (submission); absent on the MX. */
  user?: string
  /** Our queue id, for the filter's log lines. */
  queueId?: string
}

export const ENVELOPE_HEADER = 'x-facteur-envelope'

export type VerdictAction = 'accept' | 'tag' | 'junk' | 'reject' | 'tempfail'

/** One engine's account of the message, for logs and tests; callers act on `action` only. */
export type VirusCheck =
  { status: 'clean' } | { status: 'infected'; signatures: string[] } | { status: 'off' } | { status: 'error'; detail: string }

export type SpamCheck =
  | { status: 'scanned'; engine: 'spamassassin' | 'rspamd'; score: number; rules: string[]; action?: string }
  | { status: 'skipped'; reason: 'size' | 'outbound' | 'off' }
  | { status: 'error'; engine: 'spamassassin' | 'rspamd'; detail: string }

export type AuthCheck =
  | {
      status: 'checked'
      spf: string
      spfHelo?: string
      dkim: { domain: string; result: string }[]
      dmarc: { result: string; policy?: string; domain?: string }
      arc: string
      /** Authentication-Results fields claiming our authserv-id (RFC 8601 §5): forgeries. */
      forged: number
      /** The envelope was `proxied`: SPF not checked, DMARC resting on DKIM alone and not acted on. */
      proxied?: true
    }
  | { status: 'skipped'; reason: 'outbound'; forged: number }
  | { status: 'error'; detail: string; forged: number }

/**
 * Header fields the caller must not store, as rules: every field named `name` whose
 * authserv-id (RFC 8601 §2.2) is `authservId`. Our callers apply the same rule while the message
 * streams into the spool (reception's DataGate), before the filter sees it.
 */
export type HeaderRemoval = { name: 'Authentication-Results'; authservId: string }

export type Verdict = {
  action: VerdictAction
  /** CRLF-terminated header fields to put in front of the message (every action but reject/tempfail). */
  headers: string
  /** reject and tempfail: the SMTP reply (RFC 5321 §4.2 code, RFC 3463 enhanced code without its class digit, text). */
  code?: number
  enhanced?: `${number}.${number}`
  text?: string
  removeHeaders: HeaderRemoval[]
  /** banned: attachment names refused by FILTER_BANNED_EXTENSIONS (absent when none). */
  checks: { virus: VirusCheck; spam: SpamCheck; auth: AuthCheck; banned?: string[] }
}
