// What submission changes in a message's header on its way to the spool (RFC 6409 §8): the
// fields a client left out are added, and blind copies are hidden from the other recipients.
import { randomBytes } from 'node:crypto'
import { rfc5322Date, type HeaderEdit } from '@facteur/reception'

/** RFC 5322 §3.6.3 and §3.6.6: Bcc: (and Resent-Bcc:) is removed before the message goes out. */
const BLIND = new Set(['bcc', 'resent-bcc'])
/** With SUBMISSION_HIDE_CLIENT, also the client's address a webmail or a proxy before us wrote. */
const BLIND_AND_HIDDEN = new Set([...BLIND, 'x-originating-ip'])

export function submissionHeaderEdit(opts: { hostname: string; user: string; hideClient: boolean; now?: () => Date }): HeaderEdit {
  return {
    strip: opts.hideClient ? BLIND_AND_HIDDEN : BLIND,
    add(fields) {
      const has = (name: string): boolean => fields.some((f) => f.lower === name)
      let added = ''
      // RFC 6409 §8.1: the author, when the client gave none.
      if (!has('from')) added += `From: <${opts.user}>\r\n`
      // RFC 6409 §8.2, RFC 5322 §3.6.1: the origination date.
      if (!has('date')) added += `Date: ${rfc5322Date(opts.now?.() ?? new Date())}\r\n`
      // RFC 6409 §8.3, RFC 5322 §3.6.4: a unique id, its right side our host name.
      if (!has('message-id')) added += `Message-ID: <${messageIdLeft()}@${opts.hostname}>\r\n`
      return added
    },
  }
}

function messageIdLeft(): string {
  return `${Date.now().toString(36)}.${randomBytes(9).toString('base64url')}`
}
