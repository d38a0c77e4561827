// One SMTP transaction with one remote host, through nodemailer (we do not speak SMTP by hand),
// and what each recipient's reply means: RFC 5321 §4.2.1 (2yz done, 4yz try again later, 5yz
// never), RFC 3463 (the enhanced code carried into logs and DSNs). A host that cannot be reached,
// does not greet, greets with an error or answers 421 sends us to the next host (RFC 5321 §5.1).
import type { RecipientState } from '@facteur/spool'
import type { Outcome } from '../outcome.js'
import type { Hop } from './mx.js'
import type { Pools, Session } from './pool.js'

export type Transaction = {
  sender: string
  recipients: RecipientState[]
  message: Buffer
  /** RFC 3461 parameters to pass on when the server offers DSN. */
  dsn?: { ret?: 'FULL' | 'HDRS'; envid?: string; notify?: string[]; orcpt?: string }
}

/** Either every recipient has its outcome, or this host could not take the message at all. */
export type HopResult = { kind: 'done'; outcomes: Map<RecipientState, Outcome> } | { kind: 'next'; reply: string }

export type NodemailerError = Error & {
  code?: string
  response?: string
  responseCode?: number
  command?: string
  recipient?: string
  rejectedErrors?: NodemailerError[]
  timeoutType?: string
}

/**
 * Node's messages for a certificate that does not verify ("self-signed certificate", "unable to
 * verify the first certificate", "Hostname/IP does not match certificate's altnames"...):
 * nodemailer passes them on as a socket error (ESOCKET), the TLS code gone.
 */
const CERTIFICATE_ERROR = /certificate|altnames/i

/** The commands of the connection itself: a failure there is the host's, not the message's. */
const SESSION_COMMANDS = new Set(['CONN', 'EHLO', 'HELO', 'LHLO', 'STARTTLS'])

export async function sendVia(pools: Pools, hop: Hop, session: Session, tx: Transaction): Promise<HopResult> {
  const where = `${hop.name}[${hop.address}]:${hop.port}`
  const down = pools.down(hop)
  if (down) return { kind: 'next', reply: down }
  const byAddress = new Map(tx.recipients.map((r) => [r.address, r]))
  const remote = (ehlo: string[] | undefined): Outcome['remote'] => ({ mta: hop.name, dsn: Boolean(ehlo?.some((l) => /^DSN\b/i.test(l))) })
  try {
    const info = await pools.transport(hop, session).sendMail({
      envelope: {
        from: tx.sender === '' ? false : tx.sender,
        to: tx.recipients.map((r) => r.address),
        size: tx.message.length,
        // RFC 6152: declare 8-bit content when there is some.
        use8BitMime: tx.message.some((b) => b > 0x7f),
        // RFC 3461 §4.2: ORCPT as `addr-type;xtext`, encoded by nodemailer; sent only if the host offers DSN.
        dsn: tx.dsn ? { ret: tx.dsn.ret, envid: tx.dsn.envid, notify: tx.dsn.notify, orcpt: tx.dsn.orcpt } : undefined,
      },
      raw: tx.message,
      signal: pools.signal(hop),
    })
    const outcomes = new Map<RecipientState, Outcome>()
    const info2 = info as typeof info & { rejectedErrors?: NodemailerError[]; ehlo?: string[] }
    recordRefusals(info2.rejectedErrors, (a) => byAddress.get(a), where, outcomes)
    // nodemailer takes any reply starting with 2 as success; only a real 2xx is one.
    const final = fromReply(info.response, where)
    for (const a of info.accepted) {
      const r = byAddress.get(String(a))
      if (r) outcomes.set(r, final.status === 'delivered' ? { ...final, remote: remote(info2.ehlo) } : final)
    }
    return { kind: 'done', outcomes }
  } catch (caught) {
    const err = caught as NodemailerError
    if (err.code === 'EABORT')
      return { kind: 'next', reply: `451 4.4.1 ${where}: ${String((err.cause as Error)?.message ?? 'host marked down')}` }
    if (err.responseCode && !SESSION_COMMANDS.has(err.command ?? '') && err.responseCode !== 421) {
      if (err.code === 'EAUTH')
        return done(tx.recipients, { status: 'deferred', reply: `454 4.7.0 ${where} refused our credentials: ${oneLine(err.response)}` })
      const outcomes = new Map<RecipientState, Outcome>()
      recordRefusals(err.rejectedErrors, (a) => byAddress.get(a), where, outcomes)
      // MAIL FROM or the message itself refused: every recipient not refused on its own gets the reply.
      for (const r of tx.recipients) if (!outcomes.has(r)) outcomes.set(r, fromReply(err.response, where))
      return { kind: 'done', outcomes }
    }
    // The host itself failed us: unreachable, silent, a TLS failure, a 421 or an error greeting.
    // STARTTLS first (RFC 3207 §4.1): not offered or refused is the host's reply to STARTTLS, and
    // the reason must say TLS (RFC 3463 X.7.10, encryption needed), not show that reply alone.
    // A certificate refused (a route that checks them) is X.7.5, cryptographic failure, as Postfix says.
    const required = session.tls === 'require' ? ` (TLS is required by ${session.requiredBy ?? 'this route'})` : ''
    const badCertificate = session.verify && err.code === 'ESOCKET' && CERTIFICATE_ERROR.test(err.message)
    const reply = badCertificate
      ? `451 4.7.5 ${where}: certificate not valid: ${err.message}${required}`
      : err.code === 'ETLS' || err.command === 'STARTTLS' || /STARTTLS/i.test(err.message)
        ? `451 4.7.10 ${where}: ${err.message}${err.response ? `: ${oneLine(err.response)}` : ''}${required}`
        : err.responseCode
          ? `${oneLine(err.response)
              .replace(/^5/, '4')
              .replace(/^(\d{3}) 5\./, '$1 4.')} (${where})`
          : err.timeoutType === 'GREETING_TIMEOUT'
            ? `451 4.4.2 ${where}: no greeting (timed out)`
            : `451 4.4.1 ${where}: ${err.message}`
    // Not a host that is down: other routes to it, which do not check its certificate, still go.
    if (!err.responseCode && err.code !== 'ETLS' && !badCertificate) pools.markDown(hop, reply)
    return { kind: 'next', reply }
  }
}

/** Each recipient nodemailer says the server refused on its own: that reply as its outcome. */
export function recordRefusals(
  errors: NodemailerError[] | undefined,
  recipient: (address: string) => RecipientState | undefined,
  where: string,
  outcomes: Map<RecipientState, Outcome>,
): void {
  for (const e of errors ?? []) {
    const r = e.recipient ? recipient(e.recipient) : undefined
    if (r) outcomes.set(r, fromReply(e.response, where))
  }
}

function done(recipients: RecipientState[], o: Outcome): HopResult {
  return { kind: 'done', outcomes: new Map(recipients.map((r) => [r, o])) }
}

/** RFC 5321 §4.2: a reply starts with three digits, the first 2 to 5 and the second 0 to 5. */
const REPLY_CODE = /^[2-5][0-5]\d(?:[ -]|\r?\n|$)/

/** A server reply as one line with an enhanced code (RFC 3463), and the status it means. */
export function fromReply(response: string | undefined, where: string): Outcome {
  // Anything else is no answer (RFC 5321 §4.2.1 gives meaning to those codes only): whether the
  // host took the message is unknown, so it is sent again later, never bounced on a garble.
  if (response !== undefined && !REPLY_CODE.test(response))
    return { status: 'deferred', reply: `451 4.5.0 Unreadable reply: ${printable(response).slice(0, 200)} (${where})` }
  const line = oneLine(response)
  const code = Number(line.slice(0, 3))
  const reply = `${line} (${where})`
  if (code >= 200 && code < 300) return { status: 'delivered', reply }
  return { status: code >= 500 ? 'failed' : 'deferred', reply }
}

/** Joins a multi-line reply and adds `X.0.0` when the server gave no enhanced code. */
export function oneLine(response: string | undefined): string {
  const lines = String(response ?? '451 No reply')
    .split(/\r?\n/)
    .filter(Boolean)
  const code = /^\d{3}/.exec(lines[0] ?? '')?.[0] ?? '451'
  const text = printable(
    lines
      .map((l) => l.replace(/^\d{3}[ -]?/, ''))
      .map((l, i) => (i === 0 ? l : l.replace(/^\d\.\d{1,3}\.\d{1,3} /, '')))
      .join(' '),
  )
  return /^\d\.\d{1,3}\.\d{1,3}\b/.test(text) ? `${code} ${text}` : `${code} ${code[0]}.0.0 ${text}`.trimEnd()
}

/** A reply ends up in logs and DSNs (RFC 3464 §2.3.6 Diagnostic-Code): one line of printable ASCII. */
function printable(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .trim()
}
