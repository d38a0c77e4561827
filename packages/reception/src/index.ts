// The receiving half of SMTP that the MX and submission share: the DATA gate (size, bare
// CR/LF, header limits, loop checks, stripped headers), our Received: field, and queueing.
// RFC 5321 §4.4 (trace), §4.5.3.1 (limits), §6.3 (loops); RFC 5322 §2.2 (header fields).
export { DataGate, type GateLimits, type HeaderField } from './gate.js'
export { receivedHeader, rfc5322Date } from './received.js'
export { receiveMessage, type ReceiveResult } from './receive.js'
export { parseHeaderBlock, headerValue, STRIPPED_HEADERS } from './headers.js'
