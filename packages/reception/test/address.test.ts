// The recipient syntax check both the MX and submission make.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseRecipient } from '@facteur/reception'

test('a plain address is split, its domain lower-cased and a trailing dot dropped', () => {
  assert.deepEqual(parseRecipient('Bob.Smith@Ours.Example.', 'ours.example'), {
    local: 'Bob.Smith',
    domain: 'ours.example',
    address: 'Bob.Smith@ours.example',
  })
  assert.deepEqual(parseRecipient('"bob"@ours.example', 'ours.example'), {
    local: 'bob',
    domain: 'ours.example',
    address: 'bob@ours.example',
  })
})

test('RCPT TO:<Postmaster> without a domain is the postmaster of the default domain', () => {
  assert.deepEqual(parseRecipient('PostMaster', 'ours.example'), {
    local: 'postmaster',
    domain: 'ours.example',
    address: 'postmaster@ours.example',
  })
})

test('relay tricks, source routes and IP literals get 554 5.7.1', () => {
  for (const raw of [
    'user%other.example@ours.example',
    'other.example!user@ours.example',
    '"user@other.example"@ours.example',
    '@relay.example:user@ours.example',
    'user@[192.0.2.1]',
    'user@ours..example',
  ]) {
    assert.throws(() => parseRecipient(raw, 'ours.example'), { reply: '554 5.7.1 Relay access denied' }, raw)
  }
})

test('local parts that could name a file, and bad syntax, get 553 5.1.3; non-ASCII 553 5.6.7', () => {
  for (const raw of [
    '../etc@ours.example',
    'a/b@ours.example',
    '.a@ours.example',
    'a.@ours.example',
    'a..b@ours.example',
    'noat',
    '@ours.example',
  ]) {
    assert.throws(
      () => parseRecipient(raw, 'ours.example'),
      (err: { reply?: string }) => /^55[34] 5\.(1\.3|7\.1) /.test(err.reply ?? ''),
      raw,
    )
  }
  assert.throws(() => parseRecipient('a/b@ours.example', 'ours.example'), { reply: '553 5.1.3 Bad recipient address syntax' })
  // An SRS address's base64 hash may hold a `/` (its hash is checked before it is used, never as a path).
  assert.equal(parseRecipient('SRS0=rT6/=JT=sender.test=erin@ours.example', 'ours.example').local, 'SRS0=rT6/=JT=sender.test=erin')
  assert.equal(parseRecipient('SRS1=a/b+=fwd.test==hh/h=TT=orig=user@ours.example', 'ours.example').domain, 'ours.example')
  assert.throws(() => parseRecipient('SRS0=../../etc=x@ours.example', 'ours.example'), { reply: '553 5.1.3 Bad recipient address syntax' })
  assert.throws(() => parseRecipient('josé@ours.example', 'ours.example'), { reply: '553 5.6.7 Non-ASCII addresses are not accepted here' })
})
