// Delivery status notifications: RFC 3464 reports inside an RFC 6522 multipart/report. One
// report per message and event lists every recipient concerned: a human-readable part, the
// message/delivery-status part (RFC 3464 §2.2 per-message and §2.3 per-recipient fields), and
// the returned message (message/rfc822) or its header (text/rfc822-headers) as RET asks
// (RFC 3461 §4.3).
import { randomBytes } from 'node:crypto'
import { rfc5322Date } from '@facteur/reception'
import type { Envelope, RecipientState } from '@facteur/spool'

export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed'

export type DsnRecipient = { rcpt: RecipientState; action: DsnAction; reply?: string; remoteMta?: string }

export type DsnInput = {
  envelope: Envelope
  recipients: DsnRecipient[]
  /** The message as it was queued (prepended fields included). */
  message: Buffer
  /** Who gets the report: the envelope sender, or the postmaster for a bounce that bounced. */
  to: string
  hostname: string
  /** When a delayed message is given up (RFC 3464 §2.3.7 Will-Retry-Until). */
  willRetryUntil?: Date
  now?: Date
}

/** Past this size a failed message comes back as its header only (Postfix: bounce_size_limit). */
export const RETURN_SIZE_LIMIT = 512 * 1024

const SUBJECTS: Record<DsnAction, string> = {
  failed: 'Undelivered Mail Returned to Sender',
  delayed: 'Delayed Mail (still being retried)',
  delivered: 'Successful Mail Delivery Report',
  relayed: 'Successful Mail Delivery Report',
}

/** The RFC 3463 status a report gives a recipient. */
export function dsnStatus(action: DsnAction, reply: string | undefined): string {
  const m = /^([245])\d\d[ -]+([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(reply ?? '')
  if (action === 'delivered' || action === 'relayed') return '2.0.0'
  if (action === 'delayed') return m && m[2] === '4' ? `4.${m[3]}.${m[4]}` : '4.0.0'
  // Failed after only temporary errors: the message grew too old (RFC 3463 §3.5, X.4.7).
  if (!m || m[2] !== '5') return '5.4.7'
  return `5.${m[3]}.${m[4]}`
}

/** `550 5.1.1 Unknown (mx.example[192.0.2.1]:25)` -> the reply, and the host that gave it; an
 * expired message's last reply ends with attempt.ts's `(gave up: ...)` note, kept in the text. */
function splitReply(reply: string): { text: string; mta?: string } {
  const m = /^(.*) \(([^()\s[]+)\[[^\]]+\]:\d+\)( \(gave up[^()]*\))?$/.exec(reply)
  return m ? { text: m[1] + (m[3] ?? ''), mta: m[2] } : { text: reply }
}

/** RFC 3461 §4: xtext is for parameters; a header field value only needs to stay on one line. */
const field = (s: string): string => s.replace(/[\r\n]+/g, ' ').slice(0, 900)

export function buildDsn(input: DsnInput): Buffer {
  const { envelope: env, hostname } = input
  const now = input.now ?? new Date()
  const action = input.recipients[0]?.action ?? 'failed'
  const boundary = `${env.id}.${randomBytes(6).toString('hex')}/${hostname}`
  const CRLF = '\r\n'

  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${hostname}>`,
    `To: <${input.to}>`,
    `Subject: ${SUBJECTS[action]}`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <${env.id}.${randomBytes(4).toString('hex')}.dsn@${hostname}>`,
    // RFC 3834 §5: a machine-made reply; nothing should answer it automatically.
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;${CRLF}\tboundary="${boundary}"`,
  ]

  const intro = {
    failed: 'I am sorry to have to tell you that your message could not be delivered to one or more\r\nrecipients. It is attached below.',
    delayed: `Your message could not be delivered yet to one or more recipients. It stays in the queue and\r\nwill be tried again${input.willRetryUntil ? ` until ${rfc5322Date(input.willRetryUntil)}` : ''}; you do not need to send it again.`,
    delivered: 'Your message was delivered to the recipients below, as you asked.',
    relayed: 'Your message was delivered to the recipients below, as you asked.',
  }[action]
  const human = [
    `This is the mail system at host ${hostname}.`,
    '',
    intro,
    '',
    ...input.recipients.map((r) => `<${r.rcpt.address}>: ${field(splitReply(r.reply ?? r.rcpt.lastError ?? '').text) || r.action}`),
    '',
  ]

  // RFC 3464 §2.2: per-message fields.
  const perMessage = [`Reporting-MTA: dns; ${hostname}`, `X-Facteur-Queue-ID: ${env.id}`]
  if (env.dsn?.envid) perMessage.push(`Original-Envelope-Id: ${field(env.dsn.envid)}`)
  perMessage.push(`Arrival-Date: ${rfc5322Date(new Date(env.receivedAt))}`)

  // RFC 3464 §2.3: per-recipient fields, one block each.
  const perRecipient = input.recipients.map((r) => {
    const reply = r.reply ?? r.rcpt.lastError ?? ''
    const { text, mta } = splitReply(reply)
    const lines = [`Final-Recipient: rfc822; ${r.rcpt.address}`]
    if (r.rcpt.original && r.rcpt.original.toLowerCase() !== r.rcpt.address.toLowerCase())
      lines.push(`Original-Recipient: rfc822; ${field(r.rcpt.original)}`)
    lines.push(`Action: ${r.action}`, `Status: ${dsnStatus(r.action, text)}`)
    if (r.remoteMta ?? mta) lines.push(`Remote-MTA: dns; ${r.remoteMta ?? mta}`)
    if (text) lines.push(`Diagnostic-Code: smtp; ${field(text)}`)
    lines.push(`Last-Attempt-Date: ${rfc5322Date(new Date(r.rcpt.doneAt ?? now.getTime()))}`)
    if (action === 'delayed' && input.willRetryUntil) lines.push(`Will-Retry-Until: ${rfc5322Date(input.willRetryUntil)}`)
    return lines.join(CRLF)
  })

  // RFC 3461 §4.3: RET=FULL the whole message, RET=HDRS its header; without RET, failures
  // return the message (up to RETURN_SIZE_LIMIT), other reports the header.
  const ret = env.dsn?.ret ?? (action === 'failed' ? 'FULL' : 'HDRS')
  const full = ret === 'FULL' && input.message.length <= RETURN_SIZE_LIMIT
  const end = input.message.indexOf('\r\n\r\n')
  const returned = full ? input.message : input.message.subarray(0, end < 0 ? input.message.length : end + 2)
  const eightBit = returned.some((b) => b > 0x7f)
  const returnedHead = [
    `Content-Type: ${full ? 'message/rfc822' : 'text/rfc822-headers'}`,
    `Content-Description: ${action === 'failed' ? 'Undelivered Message' : 'Message Headers'}`,
    ...(eightBit ? ['Content-Transfer-Encoding: 8bit'] : []),
  ]

  const text = [
    ...head,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Description: Notification',
    '',
    ...human,
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    'Content-Description: Delivery report',
    '',
    perMessage.join(CRLF),
    '',
    perRecipient.join(CRLF + CRLF),
    '',
    `--${boundary}`,
    ...returnedHead,
    '',
    '',
  ].join(CRLF)
  // RFC 2046 §5.1.1: the CRLF before a boundary belongs to the boundary.
  const tail = `${CRLF}--${boundary}--${CRLF}`
  return Buffer.concat([Buffer.from(text, 'utf8'), returned, Buffer.from(tail, 'latin1')])
}
