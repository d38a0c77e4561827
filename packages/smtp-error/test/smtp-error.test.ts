import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SmtpError, toSmtpError } from '@facteur/smtp-error'

test('the class digit of the enhanced code comes from the reply code', () => {
  const err = new SmtpError(550, '1.1', 'No such user here')
  assert.equal(err.reply, '550 5.1.1 No such user here')
  assert.equal(err.temporary, false)
  assert.equal(new SmtpError(451, '7.1', 'Try later').reply, '451 4.7.1 Try later')
})

test('an unknown error becomes 451 4.3.0 with its cause kept for the log', () => {
  const cause = new Error('EIO')
  const err = toSmtpError(cause)
  assert.equal(err.reply, '451 4.3.0 Local error in processing, try again later')
  assert.equal(err.cause, cause)
  assert.equal(err.temporary, true)
})

test('smtp-server receives the enhanced code in front of the text', () => {
  const e = new SmtpError(554, '7.1', 'Relay access denied').toServerError()
  assert.equal(e.responseCode, 554)
  assert.equal(e.message, '5.7.1 Relay access denied')
})
