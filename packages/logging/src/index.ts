// Structured logs for every service (winston): JSON in containers, one readable line on a terminal.
// Field names are shared: service, cid, queueId, remoteIp, cmd, code, enhanced, durationMs.
export { createLogger, type Logger } from './logger.js'
