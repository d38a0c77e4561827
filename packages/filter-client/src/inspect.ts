// The callers' side of the filter: reception's `inspect` hook. It sends the stored, uncommitted
// message to the filter and applies the verdict to the transaction: a refusal becomes the DATA
// reply (no backscatter), headers go in front of the message, a junk verdict picks the folder.
import fs from 'node:fs'
import { SmtpError } from '@facteur/smtp-error'
import { checkMessage, FilterUnavailable } from './client.js'
import type { FilterEnvelope, Verdict } from './verdict.js'

export type FilterSettings = Readonly<{ url: string | null; timeoutMs: number; failure: 'tempfail' | 'accept' }>

/** The parts of a spool envelope draft the filter reads and writes. */
export type InspectedDraft = {
  sender: string
  recipients: { original: string }[]
  client: { ip: string; helo: string; user?: string }
  prepend?: string
  folder?: string
}

/** What the hook reports for the caller's one log line per transaction. */
export type FilterOutcome = { action: Verdict['action'] | 'unscanned'; verdict?: Verdict; error?: string; durationMs: number }

export const JUNK_FOLDER = 'Junk'

/** Messages up to this size are read whole for the filter; larger ones are streamed to it. */
const READ_WHOLE = 256 * 1024

/**
 * The inspect hook for receiveMessage, or undefined when FILTER_URL=off. `onOutcome` hears
 * every verdict (or the failure) before the transaction goes on.
 */
export function filterInspector(
  filter: FilterSettings,
  opts: { direction: FilterEnvelope['direction']; proxied?: boolean; onOutcome?: (outcome: FilterOutcome) => void },
): ((writer: { id: string; path: string; size: number }, headers: unknown, draft: InspectedDraft) => Promise<void>) | undefined {
  const url = filter.url
  if (url === null) return undefined
  return async (writer, _headers, draft) => {
    const started = Date.now()
    const envelope: FilterEnvelope = {
      direction: opts.direction,
      ip: draft.client.ip,
      ...(opts.proxied ? { proxied: true as const } : {}),
      helo: draft.client.helo,
      sender: draft.sender,
      recipients: draft.recipients.map((r) => r.original),
      ...(draft.client.user ? { user: draft.client.user } : {}),
      queueId: writer.id,
    }
    // The filter sees the message as delivery will write it: our Received: first (spamd and
    // rspamd read the relay's address from it), then the stored bytes.
    // A message of up to READ_WHOLE is read in one call on the main thread (it was just written:
    // the page cache answers in microseconds, where a stream costs four trips through libuv's pool).
    // writer.size bytes, no more: the file may be a reused one, longer until commit.
    const head = Buffer.from(draft.prepend ?? '', 'latin1')
    const body =
      writer.size <= READ_WHOLE
        ? readStored(writer.path, writer.size)
        : fs.createReadStream(writer.path, { start: 0, end: writer.size - 1 })
    let verdict: Verdict
    try {
      verdict = await checkMessage({ url, timeoutMs: filter.timeoutMs }, envelope, [head, body], head.length + writer.size)
    } catch (err) {
      const error = err instanceof FilterUnavailable ? err.message : `filter call failed: ${(err as Error).message}`
      opts.onOutcome?.({ action: 'unscanned', error, durationMs: Date.now() - started })
      if (filter.failure === 'tempfail') throw new SmtpError(451, '7.1', 'Message could not be scanned, try again later', { cause: err })
      draft.prepend = 'X-Facteur-Filter: not scanned (filter unavailable)\r\n' + (draft.prepend ?? '')
      return
    }
    opts.onOutcome?.({ action: verdict.action, verdict, durationMs: Date.now() - started })
    applyVerdict(verdict, draft)
  }
}

/** The first `size` bytes of `file`. */
function readStored(file: string, size: number): Buffer {
  const fd = fs.openSync(file, 'r')
  try {
    const buf = Buffer.allocUnsafe(size)
    let n = 0
    for (let r = 1; n < size && r > 0; n += r) r = fs.readSync(fd, buf, n, size - n, n)
    return buf.subarray(0, n)
  } finally {
    fs.closeSync(fd)
  }
}

/** Throws the SMTP refusal of a reject or tempfail verdict; otherwise edits the draft. */
export function applyVerdict(verdict: Verdict, draft: InspectedDraft): void {
  if (verdict.action === 'reject') {
    const code = verdict.code && verdict.code >= 500 && verdict.code < 600 ? verdict.code : 554
    throw new SmtpError(code, enhanced(verdict), verdict.text ?? 'Message refused by the content filter')
  }
  if (verdict.action === 'tempfail') {
    const code = verdict.code && verdict.code >= 400 && verdict.code < 500 ? verdict.code : 451
    throw new SmtpError(code, enhanced(verdict), verdict.text ?? 'Message could not be scanned, try again later')
  }
  // Filter headers go on top: they are the newest trace of this hop (RFC 8601 §5 asks for the
  // Authentication-Results field above any it follows).
  draft.prepend = (verdict.headers ?? '') + (draft.prepend ?? '')
  if (verdict.action === 'junk') draft.folder = JUNK_FOLDER
}

/** RFC 3463 §2 subject.detail from the verdict; 7.1 (delivery not authorized) when it is missing or malformed. */
function enhanced(verdict: Verdict): `${number}.${number}` {
  return verdict.enhanced && /^\d{1,3}\.\d{1,3}$/.test(verdict.enhanced) ? verdict.enhanced : '7.1'
}
