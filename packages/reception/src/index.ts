// The receiving half of SMTP that the MX and submission share: the DATA gate (size, bare
// CR/LF, header limits, loop checks, stripped headers), our Received: field, queueing, the
// recipient checks both make (syntax, local expansion), the mail transaction's handlers, and each
// listener's guards (enhanced status codes on every reply, deadlines against slow clients).
// RFC 5321 §3.3 (transaction), §4.4 (trace), §4.5.3.1 (limits), §4.5.3.2 (timeouts), §6.3 (loops);
// RFC 5322 §2.2 (header fields); RFC 2034 and RFC 3463 (enhanced status codes).
export { DataGate, type GateLimits, type HeaderEdit, type HeaderField } from './gate.js'
export { receivedHeader, rfc5322Date } from './received.js'
export { receiveMessage, type ReceiveResult } from './receive.js'
export { parseHeaderBlock, headerValue, STRIPPED_HEADERS } from './headers.js'
export { parseRecipient, RELAY_DENIED, type ParsedRecipient } from './address.js'
export { expandLocalRecipient } from './local-recipient.js'
export { alwaysBcc, type AlwaysBcc } from './always-bcc.js'
export { openAccess, parseAccess, lookupAddress, lookupClient, type Access, type AccessDecision } from './access.js'
export { openCanonical, parseCanonical, SENDER_CANONICAL_FILE, type Canonical } from './canonical.js'
export {
  parseHeaderChecks,
  judgeHeader,
  judgeBody,
  openHeaderChecks,
  HEADER_CHECKS_FILE,
  BODY_CHECKS_FILE,
  BODY_CHECKS_LIMIT,
  type HeaderVerdict,
} from './header-checks.js'
export { acceptProxyV2, parseProxyV2, ProxyHeaderError } from './proxy-v2.js'
export { checkRemoteRecipient, expandOrForward, LOCAL_ONLY } from './outbound-rcpt.js'
export { openReceiving, receivingChecks, type ReceivingResources } from './resources.js'
export { runReceivingService, type ReceivingListeners } from './service.js'
export { createAdmission, MAX_WAIT_MS, type Admission } from './admission.js'
export { mailTransactions, type Transaction, type TransactionPolicy, type MessagePolicy, type Transactions } from './transaction.js'
export { listenerOptions, guardListener, type SessionTimeout, type TooManyErrors } from './listener.js'
export { listenShared, REUSE_PORT, type Listening } from './listen.js'
export { onEachConnection, type SmtpConnection } from './smtp-connection.js'
export { ClientLimit, clientKey, clientLimitFor } from './client-limit.js'
export { ConnectionRate, connectionRateFor } from './client-rate.js'
export { bridgeGateway, parseDefaultRoute, sharedAddress, announceGateway } from './docker-gateway.js'
export { type ErrorLimits } from './error-limit.js'
export { type DeadlineLimits } from './deadline.js'
