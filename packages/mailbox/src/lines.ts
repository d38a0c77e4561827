// Turns a CRLF message into LF lines for local storage, with optional mboxrd quoting: as a
// stream (toLocalLines), or a whole message in memory at once (localBytes, HeldMessage).
import type { Readable } from 'node:stream'

/**
 * A message held in memory (CRLF line ends, as stored in the spool) for all its local copies:
 * converted once per quoting (mbox or Maildir), not once per recipient. Iterating it yields the
 * CRLF bytes, so it goes wherever a message stream goes.
 */
export class HeldMessage implements AsyncIterable<Buffer> {
  private readonly converted = new Map<boolean, Buffer>()
  constructor(readonly bytes: Buffer) {}

  /** The message with LF line ends (and mboxrd quoting when `quoteFrom`), computed once. */
  local(quoteFrom: boolean): Buffer {
    let out = this.converted.get(quoteFrom)
    if (!out) this.converted.set(quoteFrom, (out = localBytes(this.bytes, quoteFrom)))
    return out
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    yield this.bytes
  }
}

/** Yields LF-terminated output chunks; `quoteFrom` applies mboxrd's `>From ` rule (RFC 4155 App. A). */
export async function* toLocalLines(input: Readable | AsyncIterable<Buffer>, quoteFrom: boolean): AsyncGenerator<Buffer> {
  if (input instanceof HeldMessage) {
    if (input.bytes.length) yield input.local(quoteFrom)
    return
  }
  let rest = ''
  for await (const chunk of input as AsyncIterable<Buffer>) {
    const text = rest + chunk.toString('latin1')
    const lines = text.split('\n')
    rest = lines.pop() ?? ''
    if (lines.length) yield Buffer.from(lines.map((l) => fix(l, quoteFrom)).join('\n') + '\n', 'latin1')
  }
  if (rest !== '') yield Buffer.from(fix(rest, quoteFrom) + '\n', 'latin1')
}

/** What toLocalLines yields, for a whole message at once: one pass over the text, not one per line. */
export function localBytes(message: Buffer, quoteFrom: boolean): Buffer {
  if (message.length === 0) return message
  // Each line loses one CR before its LF; a last line without LF loses a trailing CR, gains a LF.
  let text = message.toString('latin1').replaceAll('\r\n', '\n')
  if (!text.endsWith('\n')) text = (text.endsWith('\r') ? text.slice(0, -1) : text) + '\n'
  // (^|\n), not the m flag: a lone CR left inside a line must not start a line for the quoting.
  if (quoteFrom) text = text.replace(/(^|\n)(>*From )/g, '$1>$2')
  return Buffer.from(text, 'latin1')
}

function fix(line: string, quoteFrom: boolean): string {
  const l = line.endsWith('\r') ? line.slice(0, -1) : line
  return quoteFrom && /^>*From /.test(l) ? '>' + l : l
}
