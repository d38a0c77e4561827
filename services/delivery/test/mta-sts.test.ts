// RFC 8461's pieces that take no network: the TXT record, the policy file, MX name matching.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mxMatches, parsePolicy, policyId } from '../src/outbound/mta-sts.js'

test('policyId: the id of the one v=STSv1 record; none, two, or a record without an id is no policy', () => {
  assert.equal(policyId([['v=STSv1; id=20261130T1;']]), '20261130T1')
  assert.equal(policyId([['v=STSv1; ', 'id=abc']]), 'abc', 'the strings of one record are joined')
  assert.equal(policyId([['v=spf1 -all'], ['v=STSv1;id=x1']]), 'x1')
  assert.equal(policyId([]), null)
  assert.equal(policyId([['v=STSv1; id=a'], ['v=STSv1; id=b']]), null)
  assert.equal(policyId([['v=STSv1; ']]), null)
  assert.equal(policyId([['v=STSv1; id=has-dash']]), null, 'id is 1 to 32 letters and digits')
  assert.equal(policyId([['v=STSv2; id=a']]), null)
})

test('parsePolicy: the fields of RFC 8461 §3.2, LF or CRLF, unknown keys ignored; anything invalid throws', () => {
  assert.deepEqual(
    parsePolicy('version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET.\r\nmax_age: 86400\r\nextra: x\r\n'),
    {
      mode: 'enforce',
      mx: ['mail.example.com', '*.example.net'],
      maxAge: 86400,
    },
  )
  assert.deepEqual(parsePolicy('version: STSv1\nmode: none\nmax_age: 0\n'), { mode: 'none', mx: [], maxAge: 0 })
  for (const [text, why] of [
    ['mode: enforce\nmx: a.example\nmax_age: 1\n', /version/],
    ['version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n', /mode strict/],
    ['version: STSv1\nmode: testing\nmax_age: 1\n', /names no mx/],
    ['version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n', /max_age/],
    ['version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n', /max_age/],
    ['<html>not found</html>', /version/],
  ] as const)
    assert.throws(() => parsePolicy(text), why, text)
})

test('mxMatches: a name exactly, or *. for one leftmost label only (RFC 8461 §4.1)', () => {
  assert.ok(mxMatches('mail.example.com', 'MAIL.example.com.'))
  assert.ok(mxMatches('*.example.net', 'mx1.example.net'))
  assert.ok(!mxMatches('*.example.net', 'example.net'))
  assert.ok(!mxMatches('*.example.net', 'a.b.example.net'))
  assert.ok(!mxMatches('mail.example.com', 'mail.example.com.evil.example'))
})
