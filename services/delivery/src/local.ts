// Local delivery: one recipient's copy into its mailbox (MAILBOX_FORMAT at MAILBOX_PATH), as
// MAIL_UID. Temporary failures (locked mailbox, full disk) are retried; a path that would leave
// the mailbox base, or a symlink, is a permanent failure.
import { expandMailboxPath, type Config } from '@facteur/config'
import { deliverToMailbox, MailboxError, type HeldMessage } from '@facteur/mailbox'
import type { ActiveMessage, RecipientState } from '@facteur/spool'
import type { Outcome } from './outcome.js'

/** `content`: the message already in memory (shared by the attempt's local copies); else streamed from the spool. */
export async function deliverLocal(
  config: Config,
  message: ActiveMessage,
  rcpt: RecipientState,
  opts: { folder?: string; content?: HeldMessage } = {},
): Promise<Outcome> {
  const at = rcpt.address.lastIndexOf('@')
  const path = expandMailboxPath(config.mailbox.pathTemplate, rcpt.address.slice(0, at), rcpt.address.slice(at + 1))
  if (!path) return { status: 'failed', reply: '550 5.1.3 Mailbox name not allowed' }
  try {
    await deliverToMailbox(
      {
        format: config.mailbox.format,
        path,
        base: config.mailbox.base,
        owner: { uid: config.mailbox.uid, gid: config.mailbox.gid },
        folder: opts.folder ?? message.envelope.folder,
      },
      { sender: message.envelope.sender, recipient: rcpt.address, receivedAt: new Date(message.envelope.receivedAt) },
      opts.content ?? message.open(),
    )
    return { status: 'delivered', reply: `250 2.0.0 Delivered to ${config.mailbox.format}` }
  } catch (err) {
    const temporary = err instanceof MailboxError ? err.temporary : true
    const detail = (err as Error).message
    // The reply reaches the sender in a DSN: the server's file names stay in our log.
    const text = `mailbox unavailable: ${detail.replace(/'?\/[^\s':,]*'?/g, '<path>')}`
    return temporary ? { status: 'deferred', reply: `451 4.2.0 ${text}`, detail } : { status: 'failed', reply: `550 5.2.0 ${text}`, detail }
  }
}
