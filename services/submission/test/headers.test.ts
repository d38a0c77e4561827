// RFC 6409 §8 edits, through the DATA gate as the service uses them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DataGate } from '@facteur/reception'
import { submissionHeaderEdit } from '../src/headers.js'

const limits = { sizeLimit: 1 << 20, headerSizeLimit: 1 << 16, headerCountLimit: 100 }
const editFor = (hideClient: boolean) =>
  submissionHeaderEdit({
    hostname: 'mx.ours.example',
    user: 'alice@ours.example',
    hideClient,
    now: () => new Date(Date.UTC(2026, 10, 28, 5, 49, 15)),
  })
const edit = editFor(true)

function pass(message: string, e = edit): string {
  const gate = new DataGate(limits, undefined, e)
  const out = [gate.push(Buffer.from(message, 'latin1')), gate.end()].filter((b): b is Buffer => b !== null)
  assert.equal(gate.error, null)
  return Buffer.concat(out).toString('latin1')
}

test('Bcc: and Resent-Bcc: are removed, folded lines included, and nothing else', () => {
  const out = pass(
    'From: alice@ours.example\r\nTo: b@x.example\r\nBcc: hidden@x.example,\r\n  other@x.example\r\nresent-bcc: r@x.example\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <a@b>\r\n\r\nBcc: in the body stays\r\n',
  )
  assert.equal(
    out,
    'From: alice@ours.example\r\nTo: b@x.example\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <a@b>\r\n\r\nBcc: in the body stays\r\n',
  )
})

test('Date:, Message-ID: and From: are added at the end of the header when missing', () => {
  const out = pass('Subject: hi\r\n\r\nbody\r\n')
  assert.match(
    out,
    /^Subject: hi\r\nFrom: <alice@ours\.example>\r\nDate: Sat, 28 Nov 2026 05:49:15 \+0000\r\nMessage-ID: <[A-Za-z0-9._-]+@mx\.ours\.example>\r\n\r\nbody\r\n$/,
  )
})

test('a message with no header at all, or no body, still gets them in its header', () => {
  assert.match(pass('\r\nbody only\r\n'), /^From: <alice@ours\.example>\r\nDate: .+\r\nMessage-ID: <.+>\r\n\r\nbody only\r\n$/)
  assert.match(pass('Subject: no body\r\n'), /^Subject: no body\r\nFrom: .+\r\nDate: .+\r\nMessage-ID: <.+>\r\n$/)
})

test('two messages get two different Message-IDs', () => {
  const id = (s: string): string | undefined => /Message-ID: (.+)\r\n/.exec(s)?.[1]
  assert.notEqual(id(pass('Subject: a\r\n\r\nx\r\n')), id(pass('Subject: a\r\n\r\nx\r\n')))
})

test('with SUBMISSION_HIDE_CLIENT, X-Originating-IP (as a webmail writes it) is removed too', () => {
  const message =
    'From: alice@ours.example\r\nX-Originating-IP: [198.51.100.7]\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <a@b>\r\n\r\nx\r\n'
  assert.doesNotMatch(pass(message), /198\.51\.100\.7/)
  assert.match(pass(message, editFor(false)), /^X-Originating-IP: \[198\.51\.100\.7\]\r$/m)
})
