// The queue file: one per message, the message's bytes as received, then its envelope (JSON),
// then a fixed-size trailer naming where that envelope starts. A later state of the envelope
// (delivery's outcomes, the next attempt) is appended the same way, so the file is only ever
// written at its end; its last whole envelope is its state.
//
//   <message bytes: envelope.size of them><envelope JSON>\nFACTEUR-ENVELOPE <offset:12> <length:10>\n
//
// JSON.stringify never emits a raw line feed, so the trailer's cannot appear inside an envelope;
// the message's bytes all come before the first envelope. An append cut short by a crash leaves
// a tail that is not a valid trailer, or one whose envelope does not parse: the reader then takes
// the last whole one before it (the state before that append).
import fs from 'node:fs'
import type { Envelope } from './envelope.js'

const MARK = '\nFACTEUR-ENVELOPE '
const TRAILER_LENGTH = MARK.length + 12 + 1 + 10 + 1
/** The tail read first: an envelope and its trailer almost always fit. */
const TAIL = 64 * 1024

/** The bytes to append for `envelope`, which starts at byte `offset` of the file. */
export function envelopeRecord(envelope: Envelope, offset: number): Buffer {
  const json = Buffer.from(JSON.stringify(envelope))
  const trailer = `${MARK}${String(offset).padStart(12, '0')} ${String(json.length).padStart(10, '0')}\n`
  return Buffer.concat([json, Buffer.from(trailer, 'latin1')])
}

/**
 * The last whole envelope in `buf`, which holds the file's bytes from `base` to its end (the
 * whole file when `base` is 0); null when there is none in that window. `id`: the file's name.
 */
export function lastEnvelope(buf: Buffer, base: number, id: string): { envelope: Envelope; end: number } | null {
  // lastIndexOf() counts a negative start from the end: the loop stops before one.
  for (let from = buf.length - TRAILER_LENGTH; from >= 0;) {
    const at = buf.lastIndexOf(MARK, from, 'latin1')
    if (at < 0) break
    from = at - 1
    const m = /^ (\d{12}) (\d{10})\n$/.exec(buf.toString('latin1', at + MARK.length - 1, at + TRAILER_LENGTH))
    if (!m) continue
    const offset = Number(m[1]) - base
    const length = Number(m[2])
    if (offset < 0 || offset + length !== at) continue
    try {
      const envelope = JSON.parse(buf.toString('utf8', offset, at)) as Envelope
      if (envelope.id === id && envelope.size <= offset + base) return { envelope, end: base + at + TRAILER_LENGTH }
    } catch {
      // an append cut short: the one before it
    }
  }
  return null
}

/** The file's current envelope, read from its end (a wider window when the tail holds none). */
export function readEnvelopeFile(file: string, id: string): Envelope {
  const fd = fs.openSync(file, 'r')
  try {
    const size = fs.fstatSync(fd).size
    for (let window = Math.min(size, TAIL); ; window = Math.min(size, window * 4)) {
      const buf = Buffer.allocUnsafe(window)
      const n = fs.readSync(fd, buf, 0, window, size - window)
      const found = lastEnvelope(buf.subarray(0, n), size - window, id)
      if (found) return found.envelope
      if (window === size) throw new Error(`${file}: no envelope`)
    }
  } finally {
    fs.closeSync(fd)
  }
}
