// One entry for local delivery: picks the writer for the mailbox format.
import type { Readable } from 'node:stream'
import { appendMbox } from './mbox.js'
import { deliverMaildir, deliverMaildirs } from './maildir.js'
import type { MailboxError } from './errors.js'
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

/**
 * One message for several recipients' Maildirs (`targets`: their paths and folders, below one
 * base, one owner): one file for all, hard-linked (maildir.ts). It carries Return-Path but no
 * Delivered-To, which would show each reader the others, Bcc recipients included (Dovecot's LMTP
 * does the same). Returns, per target in order, null once delivered, or why not.
 */
export async function deliverToMaildirs(
  targets: { path: string; folder?: string }[],
  common: { base: string; owner: Owner; sender: string },
  message: () => Readable | HeldMessage,
): Promise<(MailboxError | null)[]> {
  const results = await deliverMaildirs({
    targets: targets.map((t) => ({ dir: t.path, folder: t.folder })),
    base: common.base,
    owner: common.owner,
    head: `Return-Path: <${common.sender}>\n`,
    message: message(),
    copy: message,
  })
  return results.map((r) => (typeof r === 'string' ? null : r))
}
