// SMTP_HELO_CHECK: which HELO/EHLO names Postfix's reject_invalid_helo_hostname and
// reject_non_fqdn_helo_hostname refuse, with their replies.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { heloRefusal, type HeloMode } from '../src/policy/helo.js'

const reply = (mode: HeloMode, helo: string): string => heloRefusal(mode, helo)?.reply ?? 'accepted'

test('invalid (the default): host names and address literals pass, names that are neither do not', () => {
  for (const ok of [
    'mail.example.com',
    'c',
    'MX-1.Example.ORG',
    'host_name.example',
    '[192.0.2.1]',
    '[IPv6:2001:db8::1]',
    '192.0.2.1',
    'a1.b2',
  ])
    assert.equal(reply('invalid', ok), 'accepted', ok)
  for (const bad of [
    '!!!',
    'a..b',
    '-x-.example',
    'x-.example',
    'mail.example.com.',
    '.example',
    '1.2.3',
    '[192.0.2.300]',
    '[IPv6:192.0.2.1]',
    'a b',
    `${'a'.repeat(64)}.example`,
    `${'a.'.repeat(128)}a`,
  ])
    assert.match(reply('invalid', bad), /^501 5\.5\.2 <.*>: Helo command rejected: Invalid name$/, bad)
  assert.equal(
    reply('invalid', 'bad\x01name'),
    '501 5.5.2 <bad?name>: Helo command rejected: Invalid name',
    'control characters are not echoed',
  )
})

test('fqdn: a name with a dot or an address literal; bare names and bare addresses are refused 504', () => {
  assert.equal(reply('fqdn', 'mail.example.com'), 'accepted')
  assert.equal(reply('fqdn', '[192.0.2.1]'), 'accepted')
  assert.equal(reply('fqdn', 'localhost'), '504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname')
  assert.equal(reply('fqdn', '192.0.2.1'), '504 5.5.2 <192.0.2.1>: Helo command rejected: need fully-qualified hostname')
  assert.match(reply('fqdn', '!!!'), /^501 /)
  assert.equal(reply('off', '!!!'), 'accepted')
})
