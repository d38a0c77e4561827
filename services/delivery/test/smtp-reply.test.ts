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
