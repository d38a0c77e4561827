// One DATA transaction from the client's bytes to a committed spool entry, or a refusal.
import type { Readable } from 'node:stream'
import { SmtpError } from '@facteur/smtp-error'
import type { Envelope, MessageWriter, Spool } from '@facteur/spool'
import { DataGate, type GateLimits, type HeaderEdit, type HeaderField } from './gate.js'

/** `envelope` is null when the message was discarded (header_checks' DISCARD): `id` was its queue id. */
export type ReceiveResult = { id: string; envelope: Envelope | null; held: boolean; headers: HeaderField[] }

type EnvelopeDraft = Omit<Envelope, 'version' | 'id' | 'size'>

/** Bytes gathered in memory before a write to the spool file. */
const WRITE_BATCH = 128 * 1024

/**
 * Streams the message into the spool through the gate. Resolves only once the message is
 * committed (fsync'd, visible to delivery); throws an SmtpError when it is refused.
 */
export async function receiveMessage(opts: {
  stream: Readable & { sizeExceeded?: boolean }
  spool: Spool
  limits: GateLimits
  check?: (fields: HeaderField[]) => SmtpError | null
  /** Decides on the body's first bytes once the message is whole (body_checks); absent, none are kept. */
  body?: { limit: number; check: (sample: Buffer) => SmtpError | null }
  /** Header fields to remove or add on the way to the spool (see DataGate). */
  edit?: HeaderEdit
  /** Builds the envelope once the bytes are stored (the Received: field needs the queue id). */
  envelope: (id: string, headers: HeaderField[]) => EnvelopeDraft
  /** Runs on the stored, uncommitted message (the content filter); may refuse or add headers. */
  inspect?: (writer: MessageWriter, headers: HeaderField[], draft: EnvelopeDraft) => Promise<void>
  /** Asked once the message is whole and accepted by the gate: drop it unseen, or queue it on hold. */
  disposition?: () => 'discard' | 'hold' | null
}): Promise<ReceiveResult> {
  let writer: MessageWriter
  try {
    writer = await opts.spool.begin()
  } catch (err) {
    opts.stream.resume()
    throw storageError(err)
  }
  const gate = new DataGate(opts.limits, opts.check, opts.edit, opts.body)
  try {
    let storeError: unknown = null
    // The client's chunks are often a few kB: they are gathered and written WRITE_BATCH at a
    // time (a 100 KB message is then one or two write(2) calls).
    let pending: Buffer[] = []
    let pendingBytes = 0
    const flush = async (): Promise<void> => {
      const batch = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes)
      pending = []
      pendingBytes = 0
      // After a write error, keep reading to the final dot so the reply lands in order.
      if (batch.length && !storeError) await writer.write(batch).catch((e: unknown) => (storeError = e))
    }
    for await (const chunk of opts.stream as AsyncIterable<Buffer>) {
      const out = gate.push(chunk)
      if (!out || storeError) continue
      pending.push(out)
      pendingBytes += out.length
      if (pendingBytes >= WRITE_BATCH) await flush()
    }
    const out = gate.end()
    if (out) {
      pending.push(out)
      pendingBytes += out.length
    }
    await flush()
    if (opts.stream.sizeExceeded) throw new SmtpError(552, '3.4', 'Message size exceeds fixed maximum message size')
    if (gate.error) throw gate.error
    if (storeError) throw storeError
    const headers = gate.headers ?? []
    const disposition = opts.disposition?.() ?? null
    if (disposition === 'discard') {
      await writer.abort()
      return { id: writer.id, envelope: null, held: false, headers }
    }
    const draft = opts.envelope(writer.id, headers)
    if (opts.inspect) {
      // The bytes are final: their fsync runs while the content filter scans them (its error, if
      // any, comes back from commit()).
      writer.sync().catch(() => undefined)
      await opts.inspect(writer, headers, draft)
    }
    const held = disposition === 'hold'
    const envelope = await writer.commit(draft, { hold: held })
    return { id: writer.id, envelope, held, headers }
  } catch (err) {
    await writer.abort().catch(() => undefined)
    throw err instanceof SmtpError ? err : storageError(err)
  }
}

function storageError(err: unknown): SmtpError {
  const code = (err as NodeJS.ErrnoException)?.code
  // RFC 3463 §3.4: 4.3.1 mail system full.
  if (code === 'ENOSPC' || code === 'EDQUOT') return new SmtpError(452, '3.1', 'Insufficient system storage', { cause: err })
  return new SmtpError(451, '3.0', 'Local error in processing, try again later', { cause: err })
}
