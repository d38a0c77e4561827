// The DATA gate: sees every byte of a message as it arrives and decides what reaches the spool.
// It refuses bare CR or LF (SMTP smuggling; Postfix's smtpd_forbid_bare_newline), oversize
// messages and header blocks, and removes the header fields only final delivery may write.
// A service may strip more fields and add missing ones (submission: RFC 6409 §8, RFC 5322 §3.6.3).
import { SmtpError } from '@facteur/smtp-error'
import { parseHeaderBlock, STRIPPED_HEADERS, type HeaderField } from './headers.js'

export type { HeaderField }
export type GateLimits = { sizeLimit: number; headerSizeLimit: number; headerCountLimit: number }
/** Edits of the header block on its way to the spool; `add` sees the fields as received. */
export type HeaderEdit = {
  strip?: ReadonlySet<string>
  /** Removes single fields by their content (the MX: Authentication-Results claiming our authserv-id, RFC 8601 §5). */
  drop?: (field: HeaderField) => boolean
  add?: (fields: HeaderField[]) => string
  /** A kept field's replacement (CRLF-terminated lines, '' removes it), or undefined to keep it (header_checks). */
  rewrite?: (field: HeaderField) => string | undefined
}

const CR = 0x0d
const LF = 0x0a
const HEADER_END = Buffer.from('\r\n\r\n')

export class DataGate {
  /** The first refusal; once set, nothing more is stored. */
  error: SmtpError | null = null
  /** The message's header fields as received (before stripping), once the header has ended. */
  headers: HeaderField[] | null = null
  /** Bytes received from the client. */
  bytes = 0

  private head: Buffer = Buffer.alloc(0)
  /** The body's first bytes, for `body.check` (body_checks). */
  private bodySample: Buffer[] = []
  private bodySampled = 0
  private inHeader = true
  private crPending = false
  private lastByte = LF

  constructor(
    private readonly limits: GateLimits,
    /** Decides on the header fields (loops, ...); a returned error refuses the message. */
    private readonly check: (fields: HeaderField[]) => SmtpError | null = () => null,
    /** More fields to remove (lower-case names), and CRLF-terminated fields to append. */
    private readonly edit: HeaderEdit = {},
    /** Decides on the body's first `limit` bytes once the message is whole (body_checks). */
    private readonly body?: { limit: number; check: (sample: Buffer) => SmtpError | null },
  ) {}

  /** Feeds received bytes; returns the bytes to store, or null. */
  push(chunk: Buffer): Buffer | null {
    this.bytes += chunk.length
    if (this.error) return null
    if (this.bytes > this.limits.sizeLimit) {
      return this.fail(new SmtpError(552, '3.4', 'Message size exceeds fixed maximum message size'))
    }
    if (this.bareNewline(chunk)) return this.fail(new SmtpError(550, '5.2', 'Bare CR or LF not allowed in message data, use CRLF'))
    if (!this.inHeader) return this.sample(chunk)
    const from = Math.max(0, this.head.length - 3)
    this.head = this.head.length ? Buffer.concat([this.head, chunk]) : chunk
    // An empty header block: the message starts with the blank line.
    const end = this.head[0] === CR && this.head[1] === LF ? -2 : this.head.indexOf(HEADER_END, from)
    if (end === -1) {
      if (this.head.length > this.limits.headerSizeLimit) return this.fail(new SmtpError(552, '3.4', 'Message header exceeds size limit'))
      return null
    }
    return this.endHeader(end + 2)
  }

  /** The client sent the final dot: returns what remains to store, or null. */
  end(): Buffer | null {
    if (this.crPending && !this.error) this.fail(new SmtpError(550, '5.2', 'Bare CR or LF not allowed in message data, use CRLF'))
    const last = this.error || !this.inHeader ? null : this.endHeader(this.head.length)
    if (this.body && !this.error) {
      const refusal = this.body.check(Buffer.concat(this.bodySample, this.bodySampled))
      this.bodySample = []
      if (refusal) return this.fail(refusal)
    }
    return last
  }

  /** Keeps the body's first bytes for `body.check`; returns the chunk. */
  private sample(chunk: Buffer): Buffer {
    if (this.body && this.bodySampled < this.body.limit && chunk.length) {
      const part = chunk.subarray(0, this.body.limit - this.bodySampled)
      this.bodySample.push(Buffer.from(part))
      this.bodySampled += part.length
    }
    return chunk
  }

  private endHeader(split: number): Buffer | null {
    this.inHeader = false
    if (split > this.limits.headerSizeLimit) return this.fail(new SmtpError(552, '3.4', 'Message header exceeds size limit'))
    const fields = parseHeaderBlock(this.head.subarray(0, Math.max(0, split)).toString('latin1'))
    this.headers = fields
    if (fields.length > this.limits.headerCountLimit) return this.fail(new SmtpError(552, '3.4', 'Too many header fields'))
    const refusal = this.check(fields)
    if (refusal) return this.fail(refusal)
    const strip = this.edit.strip
    const kept = fields.filter((f) => !STRIPPED_HEADERS.has(f.lower) && !strip?.has(f.lower) && !this.edit.drop?.(f))
    const rewrite = this.edit.rewrite
    const text = kept.map((f) => rewrite?.(f) ?? f.raw + '\r\n').join('') + (this.edit.add?.(fields) ?? '')
    const rest = this.sample(this.head.subarray(Math.max(0, split)))
    this.head = Buffer.alloc(0)
    return Buffer.concat([Buffer.from(text, 'latin1'), rest])
  }

  private fail(err: SmtpError): null {
    this.error = err
    this.head = Buffer.alloc(0)
    return null
  }

  /** True if the chunk holds a LF not preceded by CR, or a CR not followed by LF. */
  private bareNewline(chunk: Buffer): boolean {
    if (chunk.length === 0) return false
    if (this.crPending && chunk[0] !== LF) return true
    for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
      const prev = i > 0 ? chunk[i - 1] : this.lastByte
      if (prev !== CR) return true
    }
    for (let i = chunk.indexOf(CR); i !== -1; i = chunk.indexOf(CR, i + 1)) {
      if (i + 1 < chunk.length && chunk[i + 1] !== LF) return true
    }
    this.lastByte = chunk[chunk.length - 1]
    this.crPending = this.lastByte === CR
    return false
  }
}
