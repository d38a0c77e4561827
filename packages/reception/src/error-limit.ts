// Errors per session (SMTP_SOFT_ERROR_LIMIT, SMTP_HARD_ERROR_LIMIT, SMTP_ERROR_SLEEP): Postfix's
// smtpd_soft_error_limit, smtpd_hard_error_limit and smtpd_error_sleep_time. A client that keeps
// getting 4xx and 5xx replies (a directory harvest guessing names RCPT after RCPT, a fuzzer, a
// client stuck in a loop) waits SMTP_ERROR_SLEEP before each command once it has made the soft
// limit's errors, and is told 421 4.7.0 and disconnected at the hard limit. A message accepted
// (the 250 after DATA) starts the count again: Postfix counts errors "without delivering mail".
import type { SmtpConnection } from './smtp-connection.js'

export type ErrorLimits = {
  /** Errors after which each command waits errorSleepMs; 0: never. */
  softErrorLimit: number
  /** Errors at which the session is closed with 421 4.7.0; 0: never. */
  hardErrorLimit: number
  errorSleepMs: number
}

/** `onHardLimit`: the session is being closed for its errors (the service logs it). */
export function limitErrors(
  connection: SmtpConnection,
  limits: ErrorLimits,
  onHardLimit: (errors: number) => void = () => undefined,
): void {
  let errors = 0
  const send = connection.send.bind(connection)
  connection.send = (code, data, context) => {
    send(code, data, context)
    // smtp-server sends the 250 that takes a message with this context (SMTPConnection#_flushData).
    if (context === 'DATA_OK') errors = 0
    // Not counted: replies before the greeting (a refusal at connect) and 421s, which close the session anyway.
    if (code < 400 || code === 421 || !connection._ready) return
    errors++
    if (limits.hardErrorLimit > 0 && errors >= limits.hardErrorLimit && !connection._closing && !connection._closed) {
      onHardLimit(errors)
      send(421, `4.7.0 ${connection.name} Error: too many errors`, false)
    }
  }
  if (limits.softErrorLimit === 0 || limits.errorSleepMs === 0) return
  // smtp-server reads the next command line only once this one's callback ran, so a command held
  // back here holds back the rest, in order (pipelining included).
  const onCommand = connection._onCommand.bind(connection)
  connection._onCommand = (command, callback) => {
    if (errors < limits.softErrorLimit) return onCommand(command, callback)
    setTimeout(() => {
      if (connection._closed || connection._closing) return callback?.()
      onCommand(command, callback)
    }, limits.errorSleepMs)
  }
}
