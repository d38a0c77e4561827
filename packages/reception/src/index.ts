// The receiving half of SMTP that the MX and submission share: the DATA gate (size, bare
// CR/LF, header limits, loop checks, stripped headers), our Received: field, queueing, and the
// recipient checks both make (syntax, local expansion).
// RFC 5321 §4.4 (trace), §4.5.3.1 (limits), §6.3 (loops); RFC 5322 §2.2 (header fields).
export { DataGate, type GateLimits, type HeaderEdit, type HeaderField } from './gate.js'
export { receivedHeader, rfc5322Date } from './received.js'
export { receiveMessage, type ReceiveResult } from './receive.js'
export { parseHeaderBlock, headerValue, STRIPPED_HEADERS } from './headers.js'
export { parseRecipient, RELAY_DENIED, type ParsedRecipient } from './address.js'
export { expandLocalRecipient } from './local-recipient.js'
export { checkRemoteRecipient, expandOrForward, LOCAL_ONLY } from './outbound-rcpt.js'
export { openReceiving, receivingChecks, type ReceivingResources } from './resources.js'
