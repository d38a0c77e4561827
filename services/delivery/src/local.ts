// Local delivery: recipients' copies into their mailboxes (MAILBOX_FORMAT at MAILBOX_PATH), as
// MAIL_UID. Temporary failures (locked mailbox, full disk) are retried; a path that would leave
// the mailbox base, or a symlink, is a permanent failure.
import { expandMailboxPath, type Config } from '@facteur/config'
import { deliverToMailbox, deliverToMaildirs, MailboxError, type HeldMessage } from '@facteur/mailbox'
import type { ActiveMessage, RecipientState } from '@facteur/spool'
import type { Outcome } from './outcome.js'
import type { Quotas } from './quota.js'
import { QUOTA_WARNING_SOURCE } from './quota-warning.js'

const NOT_ALLOWED: Outcome = { status: 'failed', reply: '550 5.1.3 Mailbox name not allowed' }

/** `content`: the message already in memory (shared by the attempt's local copies); else streamed from the spool. */
export async function deliverLocal(
  config: Config,
  message: ActiveMessage,
  rcpt: RecipientState,
  opts: { folder?: string; content?: HeldMessage; quotas?: Quotas } = {},
): Promise<Outcome> {
  const path = mailboxPathOf(config, rcpt.address)
  if (!path) return NOT_ALLOWED
  const full = exempt(message) ? null : await opts.quotas?.check(rcpt.address, path)
  if (full) return full
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
    opts.quotas?.added(rcpt.address, path, message.envelope.size)
    return delivered(config)
  } catch (err) {
    return notDelivered(err)
  }
}

/**
 * Several recipients' Maildir copies as one file, hard-linked into each Maildir (without
 * Delivered-To: @facteur/mailbox's deliverToMaildirs). Outcomes in the recipients' order.
 */
export async function deliverLocalShared(
  config: Config,
  message: ActiveMessage,
  rcpts: RecipientState[],
  content?: HeldMessage,
  quotas?: Quotas,
): Promise<Outcome[]> {
  const paths = rcpts.map((r) => mailboxPathOf(config, r.address))
  const full = await Promise.all(rcpts.map((r, i) => (quotas && paths[i] && !exempt(message) ? quotas.check(r.address, paths[i]) : null)))
  const valid = paths.filter((p, i): p is string => p !== null && !full[i])
  const results = valid.length
    ? await deliverToMaildirs(
        valid.map((path) => ({ path, folder: message.envelope.folder })),
        { base: config.mailbox.base, owner: { uid: config.mailbox.uid, gid: config.mailbox.gid }, sender: message.envelope.sender },
        () => content ?? message.open(),
      )
    : []
  let next = 0
  return paths.map((p, i) => {
    if (p === null) return NOT_ALLOWED
    const refused = full[i]
    if (refused) return refused
    const err = results[next++]
    if (err) return notDelivered(err)
    quotas?.added(rcpts[i].address, p, message.envelope.size)
    return delivered(config)
  })
}

/** A quota warning reaches the mailbox it warns about, full or not (as Dovecot's quota_grace lets it). */
const exempt = (message: ActiveMessage): boolean => message.envelope.source === QUOTA_WARNING_SOURCE

/** The mailbox (MAILBOX_PATH) of a local address, or null when its name may not be a path. */
export function mailboxPathOf(config: Config, address: string): string | null {
  const at = address.lastIndexOf('@')
  return expandMailboxPath(config.mailbox.pathTemplate, address.slice(0, at), address.slice(at + 1))
}

function delivered(config: Config): Outcome {
  return { status: 'delivered', reply: `250 2.0.0 Delivered to ${config.mailbox.format}` }
}

function notDelivered(err: unknown): Outcome {
  const temporary = err instanceof MailboxError ? err.temporary : true
  const detail = (err as Error).message
  // The reply reaches the sender in a DSN: the server's file names stay in our log.
  const text = `mailbox unavailable: ${detail.replace(/'?\/[^\s':,]*'?/g, '<path>')}`
  return temporary ? { status: 'deferred', reply: `451 4.2.0 ${text}`, detail } : { status: 'failed', reply: `550 5.2.0 ${text}`, detail }
}
