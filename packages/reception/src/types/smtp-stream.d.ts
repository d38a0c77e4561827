// smtp-server's command and DATA parser (SMTPStream, `smtp-server/lib/smtp-stream.js`; no typings
// of its own): the members data-scan.ts replaces or calls. Checked against smtp-server 3.21.
declare module 'smtp-server/lib/smtp-stream.js' {
  import { PassThrough, Writable } from 'node:stream'

  export type DataStream = PassThrough & { byteLength: number; sizeExceeded: boolean }
  export type Done = (err?: Error | null) => void

  export class SMTPStream extends Writable {
    constructor(options?: { maxCommandLength?: number })
    oncommand(command: Buffer, callback?: () => void): void
    startDataMode(maxBytes?: number): DataStream
    continue(): void
    dataBytes: number
    _dataStream: DataStream | null
    _lastBytes: Buffer | false
    _atDataStart: boolean
    _countDataBytes(len: number): void
    _endDataMode(chunk: Buffer | false, remainder: Buffer, done: Done): void
    _feedDataStream(chunk: Buffer, done: Done): void
  }
}
