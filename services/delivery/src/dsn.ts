// Delivery status notifications: RFC 3464 reports inside an RFC 6522 multipart/report. One
// report per message and event lists every recipient concerned: a human-readable part, the
// message/delivery-status part (RFC 3464 §2.2 per-message and §2.3 per-recipient fields), and
// the returned message (message/rfc822) or its header (text/rfc822-headers) as RET asks
// (RFC 3461 §4.3). The human-readable part and the Subject are in DSN_LANGUAGE (`fr`: French,
// then the English text); the machine-readable parts are the RFC's, in every language.
import { randomBytes } from 'node:crypto'
import { encodeWords } from 'nodemailer/lib/mime-funcs'
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
  /** DSN_LANGUAGE: the language of the Subject and of the human-readable part (`fr` adds English after it). */
  language?: 'en' | 'fr'
  now?: Date
}

/** Past this size a failed message comes back as its header only (Postfix: bounce_size_limit). */
export const RETURN_SIZE_LIMIT = 512 * 1024

/** What a person reads, in each language: the Subject, the first line and the intro of each report. */
const TEXTS = {
  en: {
    subjects: {
      failed: 'Undelivered Mail Returned to Sender',
      delayed: 'Delayed Mail (still being retried)',
      delivered: 'Successful Mail Delivery Report',
      relayed: 'Successful Mail Delivery Report',
    },
    system: (host: string) => `This is the mail system at host ${host}.`,
    failed: 'I am sorry to have to tell you that your message could not be delivered to one or more\r\nrecipients. It is attached below.',
    delayed: (until: string) =>
      `Your message could not be delivered yet to one or more recipients. It stays in the queue and\r\nwill be tried again${until ? ` until ${until}` : ''}; you do not need to send it again.`,
    delivered: 'Your message was delivered to the recipients below, as you asked.',
  },
  fr: {
    subjects: {
      failed: "Message non remis : retour à l'expéditeur",
      delayed: 'Message retardé (nouvelles tentatives en cours)',
      delivered: 'Avis de remise de votre message',
      relayed: 'Avis de remise de votre message',
    },
    system: (host: string) => `Ceci est le système de messagerie de l'hôte ${host}.`,
    failed:
      "J'ai le regret de vous informer que votre message n'a pas pu être remis à un ou plusieurs\r\ndestinataires. Il est joint ci-dessous.",
    delayed: (until: string) =>
      `Votre message n'a pas encore pu être remis à un ou plusieurs destinataires. Il reste dans la\r\nfile d'attente et sera de nouveau tenté${until ? ` jusqu'au ${until}` : ''} ; vous n'avez pas à le renvoyer.`,
    delivered: "Votre message a été remis aux destinataires ci-dessous, comme vous l'avez demandé.",
  },
} as const

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
  const language = input.language ?? 'en'
  const boundary = `${env.id}.${randomBytes(6).toString('hex')}/${hostname}`
  const CRLF = '\r\n'

  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${hostname}>`,
    `To: <${input.to}>`,
    // RFC 2047: the words of a Subject that are not ASCII are encoded words.
    `Subject: ${encodeWords(TEXTS[language].subjects[action], 'Q', 52)}`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <${env.id}.${randomBytes(4).toString('hex')}.dsn@${hostname}>`,
    // RFC 3834 §5: a machine-made reply; nothing should answer it automatically.
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;${CRLF}\tboundary="${boundary}"`,
  ]

  const until = input.willRetryUntil ? rfc5322Date(input.willRetryUntil) : ''
  const intro = (t: (typeof TEXTS)['en' | 'fr']): string[] => [
    t.system(hostname),
    '',
    action === 'failed' ? t.failed : action === 'delayed' ? t.delayed(until) : t.delivered,
    '',
  ]
  const human = [
    ...intro(TEXTS[language]),
    ...input.recipients.map((r) => `<${r.rcpt.address}>: ${field(splitReply(r.reply ?? r.rcpt.lastError ?? '').text) || r.action}`),
    '',
    // French first, then the English text for whoever reads none.
    ...(language === 'en' ? [] : ['-'.repeat(60), '', ...intro(TEXTS.en)]),
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
    // RFC 2045 §6.2: UTF-8 text sent as it is (French) is 8bit, not the 7bit a part is by default.
    ...(human.some((l) => /[^\x00-\x7f]/.test(l)) ? ['Content-Transfer-Encoding: 8bit'] : []),
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
