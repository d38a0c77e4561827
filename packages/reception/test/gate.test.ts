// The DATA gate's header edits (the option submission uses).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SmtpError } from '@facteur/smtp-error'
import { DataGate } from '@facteur/reception'

const limits = { sizeLimit: 1 << 20, headerSizeLimit: 1 << 16, headerCountLimit: 100 }

function run(gate: DataGate, chunks: string[]): string {
  const out: Buffer[] = []
  for (const c of chunks) {
    const b = gate.push(Buffer.from(c, 'latin1'))
    if (b) out.push(b)
  }
  const last = gate.end()
  if (last) out.push(last)
  return Buffer.concat(out).toString('latin1')
}

test('without an edit only the delivery-only fields are removed', () => {
  assert.equal(
    run(new DataGate(limits), ['Return-Path: <x@y>\r\nBcc: b@x\r\nSubject: s\r\n\r\nbody\r\n']),
    'Bcc: b@x\r\nSubject: s\r\n\r\nbody\r\n',
  )
})

test('an edit strips more fields and appends fields at the end of the header, across chunk boundaries', () => {
  const gate = new DataGate(limits, undefined, { strip: new Set(['bcc']), add: (fields) => `X-Count: ${fields.length}\r\n` })
  assert.equal(run(gate, ['Subject: s\r\nBc', 'c: b@x\r\n\r', '\nbody\r\n']), 'Subject: s\r\nX-Count: 2\r\n\r\nbody\r\n')
  assert.deepEqual(
    gate.headers?.map((f) => f.name),
    ['Subject', 'Bcc'],
    'the fields as received stay visible',
  )
})

test('a refused message gets no edit and stores nothing', () => {
  const gate = new DataGate(limits, () => new SmtpError(553, '7.1', 'No'), { add: () => 'X: y\r\n' })
  assert.equal(run(gate, ['Subject: s\r\n\r\nbody\r\n']), '')
  assert.equal(gate.error?.reply, '553 5.7.1 No')
})
