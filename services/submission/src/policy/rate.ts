// Per-user sending limits: messages in any hour (checked at MAIL), recipients per message
// (checked at RCPT). Both answer 450 4.7.1: the client may try again later.
import { SmtpError } from '@facteur/smtp-error'

const HOUR = 3_600_000

export const RATE_LIMITED = new SmtpError(450, '7.1', 'Message rate limit reached, try again later')
export const TOO_MANY_RECIPIENTS = new SmtpError(450, '7.1', 'Too many recipients for one message, send the rest in another')

export class SendingLimits {
  /** Acceptance times within the last hour, per user (at most messagesPerHour of them). */
  private readonly sent = new Map<string, number[]>()

  constructor(private readonly limits: { messagesPerHour: number; maxRecipients: number }) {}

  /** May the user start another message now? 0 means no limit. */
  mayStart(user: string, now: number): boolean {
    if (this.limits.messagesPerHour === 0) return true
    const times = (this.sent.get(user) ?? []).filter((t) => t > now - HOUR)
    if (times.length) this.sent.set(user, times)
    else this.sent.delete(user)
    return times.length < this.limits.messagesPerHour
  }

  /** May one more recipient join a message that has `count` of them? */
  mayAddRecipient(count: number): boolean {
    return count < this.limits.maxRecipients
  }

  /** A message was queued (the 250): it counts against the hour. */
  record(user: string, now: number): void {
    if (this.limits.messagesPerHour === 0) return
    const times = [...(this.sent.get(user) ?? []).filter((t) => t > now - HOUR), now]
    this.sent.set(user, times.slice(-this.limits.messagesPerHour))
  }
}
