import { test } from 'node:test'
import assert from 'node:assert/strict'
import { authservId, claimsAuthservId } from '@facteur/filter-client'

test('reads the authserv-id of an Authentication-Results field past comments, quotes and folding (RFC 8601 §2.2)', () => {
  assert.equal(authservId('Authentication-Results: mx.ours.example; spf=pass'), 'mx.ours.example')
  assert.equal(authservId('Authentication-Results: MX.Ours.Example 1; none'), 'mx.ours.example')
  assert.equal(authservId('Authentication-Results: (a (nested) comment) mx.ours.example; dkim=pass'), 'mx.ours.example')
  assert.equal(authservId('Authentication-Results: "mx.ours.example"; dkim=pass'), 'mx.ours.example')
  assert.equal(authservId('Authentication-Results:\r\n\tmx.ours.example;\r\n\tspf=pass'), 'mx.ours.example')
  assert.equal(authservId('Authentication-Results: ;'), null)
})

test('claims our authserv-id only for Authentication-Results fields naming it', () => {
  assert.equal(claimsAuthservId('authentication-results', 'authentication-results: mx.ours.example; spf=pass', 'mx.ours.example'), true)
  assert.equal(
    claimsAuthservId('Authentication-Results', 'Authentication-Results: mx.ours.example.evil; spf=pass', 'mx.ours.example'),
    false,
  )
  assert.equal(
    claimsAuthservId('ARC-Authentication-Results', 'ARC-Authentication-Results: i=1; mx.ours.example; spf=pass', 'mx.ours.example'),
    false,
  )
})
