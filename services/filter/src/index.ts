// The content filter (the amavis role): one HTTP call per message, a verdict back. Viruses
// (clamd), spam (spamd over SPAMC, or rspamd), sender authentication (mailauth: RFC 7208 SPF,
// RFC 6376 DKIM, RFC 7489 DMARC, RFC 8617 ARC, RFC 8601 Authentication-Results).
export { startFilter, type FilterServer } from './server.js'
export { decide, type Findings } from './verdict.js'
