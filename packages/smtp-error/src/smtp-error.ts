// RFC 5321 §4.2 reply codes; RFC 3463 §2 enhanced status codes.
export class SmtpError extends Error {
  override name = 'SmtpError'
  constructor(
    readonly code: number, // 421, 450, 451, 452, 550, 552, 553, 554 ...
    readonly enhanced: `${number}.${number}`, // subject.detail; the class digit comes from code
    message: string, // for the client: short, reveals no configuration
    options?: ErrorOptions, // { cause } goes to the log, never on the wire
  ) {
    super(message, options)
  }

  get temporary(): boolean {
    return this.code < 500
  }

  /** The enhanced status code with its class digit, e.g. `5.1.1`. */
  get status(): string {
    return `${Math.trunc(this.code / 100)}.${this.enhanced}`
  }

  get reply(): string {
    return `${this.code} ${this.status} ${this.message}`
  }

  /**
   * The shape smtp-server expects from a callback error: it writes
   * `responseCode + ' ' + message`, so the enhanced code goes at the front of the text.
   */
  toServerError(): SmtpReplyError {
    const err = new Error(`${this.status} ${this.message}`) as SmtpReplyError
    err.responseCode = this.code
    return err
  }
}

export type SmtpReplyError = Error & { responseCode: number }

/** Any other error becomes `451 4.3.0` at the session edge; its cause goes to the log. */
export function toSmtpError(err: unknown): SmtpError {
  if (err instanceof SmtpError) return err
  return new SmtpError(451, '3.0', 'Local error in processing, try again later', { cause: err })
}
