// A load client for the benchmarks: N parallel SMTP sessions (node:net, no pipelining, as
// smtp-source) that timestamp each reply, so that the time from the end of DATA (the final
// dot sent) to the server's 250 is known for every message: the time the server takes to make
// the message durable. smtp-source gives throughput only.
import net from 'node:net'
import { performance } from 'node:perf_hooks'

export type LoadOptions = {
  port: number
  host?: string
  /** Parallel sessions. */
  sessions: number
  /** Messages in all. */
  messages: number
  /** true: every session sends its messages over one connection; false: one connection per message. */
  reuse: boolean
  /** The body's size in bytes (as smtp-source -l: headers not included). */
  size: number
  recipients: string[]
  sender?: string
  /** Gives up on a reply after this long (ms). */
  timeoutMs?: number
}

export type LoadResult = {
  sent: number
  failed: number
  seconds: number
  /** End of DATA to 250, ms, one per accepted message. */
  latencies: number[]
  /** MAIL FROM sent to the 250 after DATA, ms, one per accepted message: the whole transaction. */
  transactions: number[]
  /** The first few failures, for the report. */
  errors: string[]
}

/** RFC 5322 headers, then a body of about `size` bytes in 78-character lines. */
export function benchMessage(size: number, to: string, n: number, from = 'load@client.example'): Buffer {
  const head =
    `From: <${from}>\r\nTo: <${to}>\r\nSubject: bench ${n}\r\n` +
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}\r\nMessage-ID: <${n}.${process.pid}.${Date.now()}@client.example>\r\n\r\n`
  const line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempo\r\n'
  const lines = Math.max(1, Math.ceil(size / line.length))
  return Buffer.from(head + line.repeat(lines), 'latin1')
}

/** One connection: reads replies (multi-line ones whole) in order. */
class Conn {
  private buf = ''
  private waiting: ((line: string) => void) | null = null
  private failed: Error | null = null
  private readonly replies: string[] = []

  private constructor(
    readonly socket: net.Socket,
    private readonly timeoutMs: number,
  ) {
    socket.setNoDelay(true)
    socket.on('data', (d: Buffer) => this.onData(d.toString('latin1')))
    socket.on('error', (err) => this.fail(err))
    socket.on('close', () => this.fail(new Error('connection closed')))
  }

  static open(host: string, port: number, timeoutMs: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port })
      socket.once('connect', () => resolve(new Conn(socket, timeoutMs)))
      socket.once('error', reject)
    })
  }

  private onData(text: string): void {
    this.buf += text
    for (let i = this.buf.indexOf('\r\n'); i !== -1; i = this.buf.indexOf('\r\n')) {
      const line = this.buf.slice(0, i)
      this.buf = this.buf.slice(i + 2)
      if (line[3] === '-') continue // RFC 5321 §4.2.1: continuation of a multi-line reply
      if (this.waiting) {
        const w = this.waiting
        this.waiting = null
        w(line)
      } else this.replies.push(line)
    }
  }

  private fail(err: Error): void {
    if (this.failed) return
    this.failed = err
    if (this.waiting) {
      const w = this.waiting
      this.waiting = null
      w(`000 ${err.message}`)
    }
  }

  reply(): Promise<string> {
    const queued = this.replies.shift()
    if (queued !== undefined) return Promise.resolve(queued)
    if (this.failed) return Promise.resolve(`000 ${this.failed.message}`)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = null
        resolve('000 timeout')
      }, this.timeoutMs)
      this.waiting = (line) => {
        clearTimeout(timer)
        resolve(line)
      }
    })
  }

  async command(line: string, expect: string): Promise<void> {
    this.socket.write(line + '\r\n')
    const r = await this.reply()
    if (!r.startsWith(expect)) throw new Error(`${line.split(':')[0]}: ${r}`)
  }

  close(): void {
    this.socket.destroy()
  }
}

export async function smtpLoad(o: LoadOptions): Promise<LoadResult> {
  const host = o.host ?? '127.0.0.1'
  const timeoutMs = o.timeoutMs ?? 120_000
  const sender = o.sender ?? 'load@client.example'
  const latencies: number[] = []
  const transactions: number[] = []
  const errors: string[] = []
  let next = 0
  let failed = 0

  const greet = async (): Promise<Conn> => {
    const c = await Conn.open(host, o.port, timeoutMs)
    const banner = await c.reply()
    if (!banner.startsWith('220')) {
      c.close()
      throw new Error(`greeting: ${banner}`)
    }
    await c.command('EHLO client.example', '250')
    return c
  }

  const send = async (c: Conn, n: number): Promise<void> => {
    const begun = performance.now()
    await c.command(`MAIL FROM:<${sender}>`, '250')
    for (const r of o.recipients) await c.command(`RCPT TO:<${r}>`, '250')
    await c.command('DATA', '354')
    c.socket.write(benchMessage(o.size, o.recipients[0], n, sender))
    c.socket.write('.\r\n')
    const t0 = performance.now()
    const r = await c.reply()
    if (!r.startsWith('250')) throw new Error(`end of DATA: ${r}`)
    latencies.push(performance.now() - t0)
    transactions.push(performance.now() - begun)
  }

  const worker = async (): Promise<void> => {
    let c: Conn | null = null
    while (next < o.messages) {
      const n = next++
      try {
        c ??= await greet()
        await send(c, n)
        if (!o.reuse) {
          await c.command('QUIT', '221').catch(() => undefined)
          c.close()
          c = null
        }
      } catch (err) {
        failed++
        if (errors.length < 5) errors.push((err as Error).message)
        c?.close()
        c = null
      }
    }
    if (c) {
      await c.command('QUIT', '221').catch(() => undefined)
      c.close()
    }
  }

  const started = performance.now()
  await Promise.all(Array.from({ length: o.sessions }, worker))
  return { sent: latencies.length, failed, seconds: (performance.now() - started) / 1000, latencies, transactions, errors }
}

/** The p-th percentile (0..100) of a list of numbers, nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

/** Opens `count` connections that wait after the greeting (idle clients); close() drops them. */
export async function idleConnections(port: number, count: number, host = '127.0.0.1'): Promise<{ open: number; close(): void }> {
  const conns: Conn[] = []
  const batch = 50
  for (let i = 0; i < count; i += batch) {
    const got = await Promise.all(
      Array.from({ length: Math.min(batch, count - i) }, async () => {
        try {
          const c = await Conn.open(host, port, 30_000)
          const banner = await c.reply()
          if (banner.startsWith('220')) return c
          c.close()
        } catch {
          // refused: counted as not open
        }
        return null
      }),
    )
    for (const c of got) if (c) conns.push(c)
  }
  return { open: conns.length, close: () => conns.forEach((c) => c.close()) }
}
