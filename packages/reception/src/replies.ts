// RFC 2034 §3, RFC 3463: every reply but the greeting and the replies to HELO/EHLO starts with an
// enhanced status code. smtp-server adds one itself when `hideENHANCEDSTATUSCODES` is false (and
// then advertises ENHANCEDSTATUSCODES in EHLO), but only from its reply code: our SmtpError
// replies already carry their own, more precise one (`toServerError()`), which would then follow a
// second. This wrapper of the connection's send() lets a reply that starts with a code through as
// it is, and gives one to the 421 that smtp-server sends without any at connect (client limit).
import type { SmtpConnection } from './smtp-connection.js'

/** `5.1.1 ` at the start of a reply text: an enhanced status code (RFC 3463 §2), followed by text. */
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /

/** RFC 3463 §3.4 X.3.2: system not accepting network messages (the client limit). */
const NOT_ACCEPTING = '4.3.2'

/** Wraps `connection.send` so that each reply carries exactly one enhanced status code. */
export function enhancedReplies(connection: SmtpConnection): void {
  const send = connection.send.bind(connection)
  connection.send = (code, data, context) => {
    if (typeof data === 'string' && ENHANCED.test(data)) return send(code, data, false)
    // smtp-server's refusals before the greeting (too many clients) are sent with context false,
    // like the greeting itself; a 421 is never a greeting nor a reply to HELO/EHLO.
    if (context === false && code === 421 && typeof data === 'string') return send(code, `${NOT_ACCEPTING} ${data}`, false)
    return send(code, data, context)
  }
}
