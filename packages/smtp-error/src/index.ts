// The one SMTP error type: a reply code and an enhanced status code that cannot disagree.
// RFC 5321 §4.2 (reply codes), RFC 3463 §2 (enhanced mail system status codes).
export { SmtpError, toSmtpError, type SmtpReplyError } from './smtp-error.js'
