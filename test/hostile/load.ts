// The hostile suite's load client: sends `count` messages, each with a unique id and a checksum of
// its body, over `concurrency` connections, and records every one answered 250 with its queue id.
// A connection that breaks (a killed service) is reopened; a message answered 4xx or cut before its
// final dot is retried with the same id; one cut after the dot is in doubt and not retried.
import { createHash, randomBytes } from 'node:crypto'
import { Wire, type Mode } from './wire.js'

export type LoadOptions = {
  port: number
  count: number
  concurrency: number
  recipients: string[]
  from?: string
  mode?: Mode
  /** The client's source address (127.0.0.2 ... for TRUSTED_NETWORKS). */
  localAddress?: string
  /** AUTH PLAIN credentials (submission). */
  auth?: { user: string; pass: string }
  /** Stop sending new messages after this many ms, or once `signal` aborts, whichever comes first. */
  budgetMs: number
  signal?: AbortSignal
  runId?: string
  /** Hears every reply with the time it took (`closed: ...` when none came), e.g. to tally by phase. */
  onReply?: (r: { id: string; command: 'MAIL' | 'RCPT' | 'DATA' | 'dot'; reply: string; ms: number }) => void
}

export type LoadResult = {
  runId: string
  /** Messages whose MAIL FROM was written. */
  sent: number
  /** id -> queue id, for every message answered 250 after its final dot. */
  accepted: Map<string, string>
  /** 4xx replies at any stage (the message is retried with the same id, up to 30 tries). */
  tempfailed: number
  /** Answered 5xx. */
  refused: number
  /** The final dot went out but the connection broke before the reply: the outcome is unknown. */
  inDoubt: Set<string>
  /** Broken before the final dot: never accepted. */
  broken: number
  replies: Record<string, number>
}

export function loadMessage(id: string, size: number, from = 'load@remote.example'): string {
  const lines: string[] = []
  let n = 0
  while (n < size) {
    const line = randomBytes(30).toString('hex')
    lines.push(line)
    n += line.length + 2
  }
  const body = lines.join('\r\n') + '\r\n'
  // RFC 5322 §3.6: From: is required (DMARC reads its domain).
  return `From: <${from}>\r\nMessage-ID: <${id}@load.test>\r\nX-Load-Id: ${id}\r\nX-Body-Sha256: ${bodySum(body)}\r\nSubject: load ${id}\r\n\r\n${body}`
}

/** The checksum of a body, independent of line ends (CRLF on the wire, LF in an mbox) and trailing blank lines. */
export function bodySum(body: string): string {
  return createHash('sha256').update(body.replace(/\r\n/g, '\n').replace(/\n+$/, '')).digest('hex')
}

/** Checks one delivered message: its id, and whether its body still matches its checksum. */
export function checkDelivered(message: string): { id: string | null; whole: boolean } {
  const text = message.replace(/\r\n/g, '\n')
  const split = text.indexOf('\n\n')
  const head = split === -1 ? text : text.slice(0, split)
  const id = /^X-Load-Id: (\S+)$/m.exec(head)?.[1] ?? null
  const sum = /^X-Body-Sha256: ([0-9a-f]{64})$/m.exec(head)?.[1]
  return { id, whole: split !== -1 && sum !== undefined && bodySum(text.slice(split + 2)) === sum }
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const runId = o.runId ?? randomBytes(4).toString('hex')
  const r: LoadResult = { runId, sent: 0, accepted: new Map(), tempfailed: 0, refused: 0, inDoubt: new Set(), broken: 0, replies: {} }
  const deadline = Date.now() + o.budgetMs
  let next = 0
  const tries = new Map<number, number>()
  const count = (reply: string): void => {
    const k = reply.startsWith('closed') ? 'closed' : reply.slice(0, 3)
    r.replies[k] = (r.replies[k] ?? 0) + 1
  }

  const worker = async (): Promise<void> => {
    let w: Wire | null = null
    let retry: number | null = null
    while ((retry !== null || next < o.count) && Date.now() < deadline && !o.signal?.aborted) {
      if (!w || w.closed) {
        w?.close()
        w = null
        try {
          w = await Wire.open(o.port, { mode: o.mode ?? 'plain', localAddress: o.localAddress, timeoutMs: 30_000 })
          if (!w.greeting.startsWith('220')) throw new Error(w.greeting)
          if (!(await w.send('EHLO load.example')).startsWith('250')) throw new Error('EHLO')
          if (
            o.auth &&
            !(await w.send(`AUTH PLAIN ${Buffer.from(`\0${o.auth.user}\0${o.auth.pass}`).toString('base64')}`)).startsWith('235')
          )
            throw new Error('AUTH')
        } catch {
          w?.close()
          w = null
          await new Promise((res) => setTimeout(res, 100)) // the service is restarting
          continue
        }
      }
      // A message keeps its id until its outcome is final: 250, 5xx, or cut after the final dot
      // (in doubt: not retried). A 4xx or a break before the dot is retried, as a real client does.
      const i = retry ?? next++
      retry = null
      const id = `${runId}-${i}`
      const rcpt = o.recipients[i % o.recipients.length]
      // Mostly small, one in twenty 64 KiB: a wider window for a kill in the middle of a write.
      const size = i % 20 === 0 ? 65_536 : 500 + ((i * 7919) % 4000)
      if (!tries.has(i)) r.sent++
      tries.set(i, (tries.get(i) ?? 0) + 1)
      const again = async (reply: string): Promise<void> => {
        count(reply)
        if (reply.startsWith('4')) r.tempfailed++
        else if (reply.startsWith('5')) r.refused++
        else r.broken++
        if (!reply.startsWith('5') && tries.get(i)! < 30) retry = i
        if (reply.startsWith('4')) await new Promise((res) => setTimeout(res, 250))
        if (!reply.startsWith('closed')) await w!.trySend('RSET')
      }
      const timed = async (command: 'MAIL' | 'RCPT' | 'DATA' | 'dot', line: string): Promise<string> => {
        const t = Date.now()
        const reply = await w!.trySend(line)
        o.onReply?.({ id, command, reply, ms: Date.now() - t })
        // No reply in time: a late one would answer the next command; start on a new connection.
        if (reply.startsWith('closed')) {
          w!.close()
          w = null
        }
        return reply
      }
      const stage = async (line: string, expect: RegExp): Promise<boolean> => {
        const reply = await timed(line.slice(0, 4) as 'MAIL' | 'RCPT' | 'DATA', line)
        if (expect.test(reply)) return true
        await again(reply)
        return false
      }
      if (!(await stage(`MAIL FROM:<${o.from ?? 'load@remote.example'}>`, /^250/))) continue
      if (!(await stage(`RCPT TO:<${rcpt}>`, /^250/))) continue
      if (!(await stage('DATA', /^354/))) continue
      const data = loadMessage(id, size, o.from).replace(/^\./gm, '..') + '.'
      const reply = await timed('dot', data)
      const queued = /^250 .*queued as (\w+)/.exec(reply)
      if (queued) {
        count(reply)
        r.accepted.set(id, queued[1])
      } else if (reply.startsWith('closed')) {
        count(reply)
        r.inDoubt.add(id)
      } else await again(reply)
    }
    w?.close()
  }
  await Promise.all(Array.from({ length: o.concurrency }, worker))
  return r
}

/** Delivered messages grouped by load id (copies of one id: duplicates); `broken` counts truncated or unidentifiable ones. */
export function deliveredCopies(messages: string[]): { byId: Map<string, string[]>; broken: number } {
  const byId = new Map<string, string[]>()
  let broken = 0
  for (const m of messages) {
    const c = checkDelivered(m)
    if (!c.id || !c.whole) broken++
    if (c.id) byId.set(c.id, [...(byId.get(c.id) ?? []), m])
  }
  return { byId, broken }
}
