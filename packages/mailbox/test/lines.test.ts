// The CRLF -> LF conversion of a message held in memory (localBytes) against the line-by-line
// stream conversion (toLocalLines): the same bytes for every shape of line end and quoting.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { localBytes, toLocalLines } from '../src/lines.js'

async function streamed(message: Buffer, quoteFrom: boolean): Promise<Buffer> {
  const out: Buffer[] = []
  // Chunks cut at every place, so a CRLF split across two chunks is covered too.
  const chunks = [message.subarray(0, 3), message.subarray(3, 7), message.subarray(7)]
  for await (const b of toLocalLines(Readable.from(chunks), quoteFrom)) out.push(b)
  return Buffer.concat(out)
}

const cases = [
  'Subject: a\r\n\r\nbody\r\n',
  'Subject: a\r\n\r\nno final line end',
  'ends with a lone CR\r',
  'bare\nLF\nlines\n',
  'a lone \r inside\r\nFrom here\r\n>From there\r\nnot From\r\n',
  '\r\n\r\n\r\n',
  'From the start\r\nx\r\r\n',
  'x',
]

test('localBytes gives what toLocalLines gives, with and without mboxrd quoting', async () => {
  for (const text of cases)
    for (const quoteFrom of [false, true]) {
      const message = Buffer.from(text, 'latin1')
      assert.equal(
        localBytes(message, quoteFrom).toString('latin1'),
        (await streamed(message, quoteFrom)).toString('latin1'),
        JSON.stringify({ text, quoteFrom }),
      )
    }
})

test('localBytes on lines cut and quoted at every place, against the line rules themselves', () => {
  const lines = ['From a', '>From b', '>>From c', 'x From d', 'From', '', '>', 'From From e']
  for (let n = 0; n < 200; n++) {
    // Deterministic mixes of the lines above with every kind of line end.
    const ends = ['\r\n', '\n', '\r\r\n']
    const picked = Array.from({ length: 1 + (n % 7) }, (_, i) => lines[(n * 7 + i * 3) % lines.length] + ends[(n + i) % ends.length])
    const message = Buffer.from(picked.join('') + (n % 3 === 0 ? 'last' : n % 3 === 1 ? 'last\r' : ''), 'latin1')
    const expected = message
      .toString('latin1')
      .replaceAll('\r\n', '\n')
      .replace(/\r$/, '\n')
      .replace(/([^\n])$/, '$1\n')
      .replace(/(^|\n)(>*From )/g, '$1>$2')
    assert.equal(localBytes(message, true).toString('latin1'), expected, JSON.stringify(message.toString('latin1')))
  }
})
