// The queue on disk, shared by the receiving services and delivery: one file per message, its
// bytes then its envelope, written and fsync'd before the 250 (RFC 5321 §4.1.1.4, §6.1).
// Format and guarantees: see README.md beside this file.
export { openSpool, type Spool, type MessageWriter, type ActiveMessage, type QueueEntry } from './spool.js'
export { type Envelope, type RecipientState, type RecipientStatus, newQueueId, QUEUE_ID } from './envelope.js'
