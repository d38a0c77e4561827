// Turns a CRLF message stream into LF lines for local storage, with optional mboxrd quoting.
import type { Readable } from 'node:stream'

/** Yields LF-terminated output chunks; `quoteFrom` applies mboxrd's `>From ` rule (RFC 4155 App. A). */
export async function* toLocalLines(input: Readable | AsyncIterable<Buffer>, quoteFrom: boolean): AsyncGenerator<Buffer> {
  let rest = ''
  for await (const chunk of input as AsyncIterable<Buffer>) {
    const text = rest + chunk.toString('latin1')
    const lines = text.split('\n')
    rest = lines.pop() ?? ''
    if (lines.length) yield Buffer.from(lines.map((l) => fix(l, quoteFrom)).join('\n') + '\n', 'latin1')
  }
  if (rest !== '') yield Buffer.from(fix(rest, quoteFrom) + '\n', 'latin1')
}

function fix(line: string, quoteFrom: boolean): string {
  const l = line.endsWith('\r') ? line.slice(0, -1) : line
  return quoteFrom && /^>*From /.test(l) ? '>' + l : l
}
