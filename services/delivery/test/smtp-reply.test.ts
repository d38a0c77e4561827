import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fromReply, oneLine } from '../src/outbound/smtp-client.js'

test('a multi-line reply becomes one line with one enhanced code', () => {
  assert.equal(
    oneLine('550-5.1.1 The email account does not exist.\n550-5.1.1 Please check\n550 5.1.1 the address.'),
    '550 5.1.1 The email account does not exist. Please check the address.',
  )
  assert.equal(oneLine('451 Try later'), '451 4.0.0 Try later')
  assert.equal(oneLine(undefined), '451 4.0.0 No reply')
})

test('2xx is delivered, 4xx deferred, 5xx failed; the host is named', () => {
  assert.deepEqual(fromReply('250 2.0.0 Ok', 'mx[192.0.2.1]:25'), { status: 'delivered', reply: '250 2.0.0 Ok (mx[192.0.2.1]:25)' })
  assert.equal(fromReply('452 4.2.2 Over quota', 'h').status, 'deferred')
  assert.equal(fromReply('552 5.2.2 Over quota', 'h').status, 'failed')
})

test('a reply that is not a reply code (RFC 5321 §4.2) is deferred, never delivered or bounced, and logged printable', () => {
  for (const garble of ['999 what?', '600 six hundred', '2', 'garbage without a code', '5\x00\x01 binary'])
    assert.equal(fromReply(garble, 'h').status, 'deferred', JSON.stringify(garble))
  assert.equal(fromReply('999 what?', 'mx[192.0.2.1]:25').reply, '451 4.5.0 Unreadable reply: 999 what? (mx[192.0.2.1]:25)')
  assert.equal(fromReply('\x00\x1b[31m\xff', 'h').reply, '451 4.5.0 Unreadable reply: ??[31m? (h)')
  assert.equal(oneLine('550 5.1.1 No\x07 such\tuser'), '550 5.1.1 No? such user')
  // Bare codes are replies: RFC 5321 §4.2 makes the text optional.
  assert.equal(fromReply('550', 'h').status, 'failed')
  assert.equal(fromReply('250', 'h').status, 'delivered')
})
