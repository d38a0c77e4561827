// smtp-server's DATA reader (SMTPStream#_feedDataStream) with one change: it finds the lines that
// begin with a dot (the end of DATA `.`, or a dot-stuffed `..`: RFC 5321 §4.1.1.4, §4.5.2) with
// Buffer#indexOf, a native search, instead of testing every byte of the message in a JavaScript
// loop. On 100 KB messages that loop was the ingress's largest single cost (bench/README.md).
// Everything else is the library's own body, statement for statement, including its guards
// (a terminator straddling chunks, an escape dot at the very start of DATA, back-pressure on the
// data stream). Checked against smtp-server 3.21; packages/reception/test/data-scan.test.ts
// feeds both readers the same random sessions in random chunks and requires the same output.
import { SMTPStream, type Done } from 'smtp-server/lib/smtp-stream.js'

const END_SEQUENCE = Buffer.from('\r\n.\r\n')
const LINE_START_DOT = Buffer.from('\n.')
const DOT_LINE = Buffer.from('.\r\n')

/** smtp-server's own reader, kept for the differential test. */
export const libraryFeedDataStream = SMTPStream.prototype._feedDataStream

export function feedDataStream(this: SMTPStream, chunk: Buffer, done: Done): void {
  // only called in data mode, which always has a stream
  const dataStream = this._dataStream!
  if (this._lastBytes && this._lastBytes.length) {
    chunk = Buffer.concat([this._lastBytes, chunk], this._lastBytes.length + chunk.length)
    this._lastBytes = false
  }
  let len = chunk.length
  // The data starts with the end terminator (an empty message). _atDataStart, not dataBytes: a
  // first line `..` that arrived alone had its escape dot stripped, and the `.` left is content.
  if (this._atDataStart && len >= 3 && chunk.compare(DOT_LINE, 0, 3, 0, 3) === 0) {
    this._endDataMode(false, chunk.subarray(3), done)
    return
  }
  // an escape dot as the very first byte
  if (this._atDataStart && len >= 2 && chunk[0] === 0x2e && chunk[1] === 0x2e) {
    chunk = chunk.subarray(1)
    len--
    this._atDataStart = false
  }
  // The library tests chunk[i] === '.' && chunk[i - 1] === '\n' for i from 2 while i < len - 2;
  // here k = i - 1 is where "\n." begins, so the same positions are k >= 1 and k + 1 < len - 2.
  for (let k = chunk.indexOf(LINE_START_DOT, 1); k !== -1 && k + 1 < len - 2; k = chunk.indexOf(LINE_START_DOT, k + 1)) {
    const i = k + 1
    if (chunk.compare(END_SEQUENCE, 0, 5, i - 2, i + 3) === 0) {
      // the content ends with the CRLF before the dot (i >= 2: never empty)
      const buf = chunk.subarray(0, i)
      this._countDataBytes(buf.length)
      this._endDataMode(buf, chunk.subarray(i + 3), done)
      return
    }
    if (chunk[i + 1] === 0x2e) {
      // an escape dot: emit what comes before it, continue after it
      const buf = chunk.subarray(0, i)
      this._lastBytes = false
      this._countDataBytes(buf.length)
      if (dataStream.writable) dataStream.write(buf)
      const rest = chunk.subarray(i + 1)
      setImmediate(() => this._feedDataStream(rest, done))
      return
    }
  }
  // keep the last bytes: a terminator may straddle this chunk and the next
  this._lastBytes = chunk.length < 4 ? chunk : chunk.subarray(chunk.length - 4)
  if (this._lastBytes.length >= chunk.length) return done() // nothing to emit yet
  const buf = chunk.subarray(0, chunk.length - this._lastBytes.length)
  this._countDataBytes(buf.length)
  if (!dataStream.writable) return done()
  // write to the stream, but wait if it asks for a drain
  if (dataStream.write(buf) || dataStream.destroyed) return done()
  // a stream that the application destroys never drains, it only closes
  const onDrain = (): void => {
    dataStream.removeListener('drain', onDrain)
    dataStream.removeListener('close', onDrain)
    done()
  }
  dataStream.once('drain', onDrain)
  dataStream.once('close', onDrain)
}

/** Every SMTPStream (every session of every listener in this process) reads DATA with feedDataStream. */
export function installDataScan(): void {
  SMTPStream.prototype._feedDataStream = feedDataStream
}
