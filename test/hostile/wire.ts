// A small raw SMTP client for the hostile tests: plain, STARTTLS or implicit TLS (465 and the
// alternate port), from a chosen loopback source address (127.0.0.2 for TRUSTED_NETWORKS).
// Replies are read from the byte stream (RFC 5321 §4.2), never assumed.
import net from 'node:net'
import tls from 'node:tls'

export type Mode = 'plain' | 'starttls' | 'implicit'

export class Wire {
  private buf = Buffer.alloc(0)
  private lines: string[] = []
  private replies: string[] = []
  private waiters: ((r: string | Error) => void)[] = []
  private closedError: Error | undefined
  greeting = ''

  private constructor(
    private socket: net.Socket,
    private readonly timeoutMs: number,
  ) {
    this.attach(socket)
  }

  static async open(port: number, opts: { mode?: Mode; localAddress?: string; timeoutMs?: number; ehlo?: string } = {}): Promise<Wire> {
    const { mode = 'plain', localAddress, timeoutMs = 10_000 } = opts
    const plain = net.connect({ host: '127.0.0.1', port, localAddress })
    await new Promise<void>((resolve, reject) => {
      plain.once('connect', () => resolve())
      plain.once('error', reject)
    })
    // Implicit TLS (RFC 8314 §3.3): the handshake first, over the connection from localAddress.
    const socket = mode === 'implicit' ? tls.connect({ socket: plain, rejectUnauthorized: false }) : plain
    if (mode === 'implicit') {
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', () => resolve())
        socket.once('error', reject)
      })
    }
    const w = new Wire(socket, timeoutMs)
    w.greeting = await w.read()
    if (mode === 'starttls') {
      await w.send(`EHLO ${opts.ehlo ?? 'client.example'}`)
      const r = await w.send('STARTTLS')
      if (!r.startsWith('220')) throw new Error(`STARTTLS refused: ${r}`)
      w.buf = Buffer.alloc(0)
      socket.removeAllListeners('data')
      const secure = tls.connect({ socket, rejectUnauthorized: false })
      w.socket = secure
      w.attach(secure)
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', () => resolve())
        secure.once('error', reject)
      })
    }
    return w
  }

  private attach(s: net.Socket): void {
    s.on('data', (c: Buffer) => this.push(c))
    s.on('error', (e) => this.end(e))
    s.on('close', () => {
      if (s === this.socket) this.end(new Error('connection closed by server'))
    })
  }

  private push(c: Buffer): void {
    this.buf = Buffer.concat([this.buf, c])
    let i: number
    while ((i = this.buf.indexOf(0x0a)) !== -1) {
      const line = this.buf.subarray(0, i).toString('latin1').replace(/\r$/, '')
      this.buf = this.buf.subarray(i + 1)
      this.lines.push(line)
      if (!/^\d{3}-/.test(line)) {
        const reply = this.lines.join('\n')
        this.lines = []
        const w = this.waiters.shift()
        if (w) w(reply)
        else this.replies.push(reply)
      }
    }
  }

  private end(e: Error): void {
    this.closedError ??= e
    for (const w of this.waiters.splice(0)) w(e)
  }

  get closed(): boolean {
    return this.closedError !== undefined
  }

  /** Bytes received that are not a whole reply line yet (a reply must end in CRLF). */
  get pending(): string {
    return [...this.lines, this.buf.toString('latin1')].join('\n')
  }

  read(timeoutMs = this.timeoutMs): Promise<string> {
    const r = this.replies.shift()
    if (r !== undefined) return Promise.resolve(r)
    if (this.closedError) return Promise.reject(this.closedError)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(done), 1)
        reject(new Error(`no reply within ${timeoutMs} ms (pending ${JSON.stringify(this.pending)})`))
      }, timeoutMs)
      const done = (x: string | Error): void => {
        clearTimeout(timer)
        if (x instanceof Error) reject(x)
        else resolve(x)
      }
      this.waiters.push(done)
    })
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data)
  }

  send(line: string): Promise<string> {
    this.write(`${line}\r\n`)
    return this.read()
  }

  /** Sends a command and returns its reply, or the reason there is none ('closed: ...'). */
  async trySend(line: string): Promise<string> {
    try {
      return await this.send(line)
    } catch (e) {
      return `closed: ${(e as Error).message}`
    }
  }

  close(): void {
    this.socket.destroy()
  }
}

/** RFC 5321 §4.2: a reply is one or more lines "ddd-text" ending with "ddd text" or "ddd". */
export function wellFormed(reply: string): boolean {
  const lines = reply.split('\n')
  const code = lines[0].slice(0, 3)
  return (
    lines.every((l, i) => (i < lines.length - 1 ? new RegExp(`^${code}-`) : new RegExp(`^${code}( |$)`)).test(l)) &&
    /^[2-5][0-5]\d$/.test(code)
  )
}
