// Writes messages into local mailboxes: mbox (mboxrd, dotlock, rolled back on failure) and
// Maildir (tmp/ then new/). Both fsync before returning. RFC 4155 (mbox), the Maildir spec.
export { appendMbox } from './mbox.js'
export { deliverMaildir, deliverMaildirs, type MaildirTarget } from './maildir.js'
export { deliverToMailbox, deliverToMaildirs, type MailboxTarget, type DeliveryMeta } from './deliver.js'
export { MailboxError } from './errors.js'
export { HeldMessage } from './lines.js'
