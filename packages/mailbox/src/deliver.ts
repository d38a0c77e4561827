// One entry for local delivery: picks the writer for the mailbox format.
import type { Readable } from 'node:stream'
import { appendMbox } from './mbox.js'
import { deliverMaildir } from './maildir.js'
import type { Owner } from './paths.js'
import type { HeldMessage } from './lines.js'

export type MailboxTarget = { format: 'mbox' | 'maildir'; path: string; base: string; owner: Owner; folder?: string }
export type DeliveryMeta = { sender: string; recipient: string; receivedAt: Date }

/** `message`: a stream of the stored (CRLF) bytes, or a HeldMessage shared by several copies. */
export async function deliverToMailbox(target: MailboxTarget, meta: DeliveryMeta, message: Readable | HeldMessage): Promise<void> {
  // RFC 5321 §4.4: the final delivery adds Return-Path; Delivered-To marks the hop (loop check).
  const head = `Return-Path: <${meta.sender}>\nDelivered-To: ${meta.recipient}\n`
  if (target.format === 'maildir') {
    await deliverMaildir({ dir: target.path, base: target.base, owner: target.owner, folder: target.folder, head, message })
    return
  }
  // mbox has no folders: a Junk verdict stays in the INBOX, tagged by its headers.
  await appendMbox({
    file: target.path,
    base: target.base,
    owner: target.owner,
    sender: meta.sender,
    receivedAt: meta.receivedAt,
    head,
    message,
  })
}
