// The submission service: authenticated users' mail on 587 (STARTTLS), 465 (implicit TLS) and an
// optional alternate port, into the spool. RFC 6409 (submission), RFC 8314 (implicit TLS),
// RFC 4954 (AUTH), RFC 3207 (STARTTLS), RFC 3461 (DSN parameters kept for delivery); the content
// filter is asked with direction outbound.
export { startSubmission, type Submission, type ListenerName } from './submission.js'
