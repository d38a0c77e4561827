/** A mailbox write that failed; `temporary` says whether a later attempt may succeed. */
export class MailboxError extends Error {
  override name = 'MailboxError'
  constructor(
    message: string,
    readonly temporary: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}
