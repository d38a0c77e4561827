// A raw SMTP client for tests: write exact bytes, read whole replies (RFC 5321 §4.2), nothing hidden.
import { connect, type Socket } from 'node:net'
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls'

export interface SmtpSessionOptions {
  host?: string
  /** The loopback address to connect from (each 127.0.0.0/8 address is a client of its own). */
  localAddress?: string
  /** Per reply, default 10 s. */
  timeoutMs?: number
}

/**
 * One SMTP connection. Replies are parsed from a byte stream, so pipelined or chunked replies come
 * out one per read, in order. A multi-line reply is returned as its lines joined with '\n', CRLF
 * removed: '250-a.example\n250-PIPELINING\n250 8BITMIME'.
 */
export interface SmtpSession {
  /** The server's greeting reply, e.g. '220 mx.example ESMTP'. */
  readonly greeting: string
  /** Writes `line` (UTF-8) + CRLF and resolves with the next reply. */
  send(line: string): Promise<string>
  /** Writes bytes as given (a string as UTF-8, no CRLF added) and resolves with the next reply. */
  sendRaw(data: string | Buffer): Promise<string>
  /** Writes bytes as given and does not wait; read the replies later with read(). */
  write(data: string | Buffer): void
  /** The next reply not yet returned; rejects on timeout or when the server closes first. */
  read(): Promise<string>
  /** Sends STARTTLS; on a 2xx reply upgrades the socket (certificates are not verified by default). */
  startTls(options?: ConnectionOptions): Promise<string>
  /** True once the server or we closed the connection. */
  readonly ended: boolean
  /** Resolves when the connection is closed (after the server hangs up, for instance). */
  readonly closed: Promise<void>
  close(): Promise<void>
}

// RFC 5321 §4.2.1: every line but the last is "code-text"; the last is "code text" or just "code".
const lastLine = /^\d{3}(?: |$)/
const anyLine = /^\d{3}[ -]?/

class ReplyReader {
  private buffer = Buffer.alloc(0)
  private lines: string[] = []
  private replies: string[] = []
  private waiting: { resolve: (reply: string) => void; reject: (err: Error) => void }[] = []
  private endError: Error | undefined

  push(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk])
    let eol: number
    while ((eol = this.buffer.indexOf(0x0a)) !== -1) {
      const line = this.buffer.subarray(0, eol).toString('utf8').replace(/\r$/, '')
      this.buffer = this.buffer.subarray(eol + 1)
      this.lines.push(line)
      if (lastLine.test(line) || !anyLine.test(line)) {
        // A line that is not a reply line at all ends the reply too, so a broken server cannot hang a test.
        this.deliver(this.lines.join('\n'))
        this.lines = []
      }
    }
  }

  end(err: Error): void {
    this.endError ??= err
    for (const waiter of this.waiting.splice(0)) waiter.reject(this.failure())
  }

  /** Drops unread bytes, for the switch to TLS (RFC 3207 §4.2: nothing sent before it counts). */
  reset(): void {
    this.buffer = Buffer.alloc(0)
    this.lines = []
  }

  read(timeoutMs: number): Promise<string> {
    const reply = this.replies.shift()
    if (reply !== undefined) return Promise.resolve(reply)
    if (this.endError) return Promise.reject(this.failure())
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (value: string) => {
          clearTimeout(timer)
          resolve(value)
        },
        reject: (err: Error) => {
          clearTimeout(timer)
          reject(err)
        },
      }
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1)
        reject(new Error(`no SMTP reply within ${timeoutMs} ms${this.partial()}`))
      }, timeoutMs)
      this.waiting.push(waiter)
    })
  }

  private deliver(reply: string): void {
    const waiter = this.waiting.shift()
    if (waiter) waiter.resolve(reply)
    else this.replies.push(reply)
  }

  private failure(): Error {
    return new Error(`${this.endError?.message ?? 'connection closed'}${this.partial()}`, { cause: this.endError })
  }

  private partial(): string {
    const pending = [...this.lines, this.buffer.toString('utf8')].filter((part) => part !== '').join('\n')
    return pending === '' ? '' : ` (partial reply: ${JSON.stringify(pending)})`
  }
}

/** Connects to host:port (default 127.0.0.1) and reads the greeting. */
export async function smtpSession(port: number, options: SmtpSessionOptions = {}): Promise<SmtpSession> {
  const { host = '127.0.0.1', timeoutMs = 10_000, localAddress } = options
  const reader = new ReplyReader()
  let socket: Socket | TLSSocket = connect({ port, host, ...(localAddress ? { localAddress } : {}) })
  let ended = false
  let markClosed!: () => void
  const closed = new Promise<void>((resolve) => (markClosed = resolve))

  const attach = (s: Socket | TLSSocket) => {
    s.on('data', (chunk: Buffer) => reader.push(chunk))
    s.on('error', (err) => reader.end(err))
    s.on('close', () => {
      if (s !== socket) return // the plain socket closing under TLS is not the end
      ended = true
      reader.end(new Error('connection closed by server'))
      markClosed()
    })
  }
  attach(socket)
  let greeting: string
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    greeting = await reader.read(timeoutMs)
  } catch (err) {
    socket.destroy()
    throw err
  }

  const write = (data: string | Buffer) => {
    socket.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data)
  }
  const read = () => reader.read(timeoutMs)

  return {
    greeting,
    get ended() {
      return ended
    },
    closed,
    send(line) {
      write(`${line}\r\n`)
      return read()
    },
    sendRaw(data) {
      write(data)
      return read()
    },
    write,
    read,
    async startTls(tlsOptions = {}) {
      write('STARTTLS\r\n')
      const reply = await read()
      if (!reply.startsWith('2')) return reply
      reader.reset()
      const plain = socket as Socket
      plain.removeAllListeners('data')
      const secure = tlsConnect({
        socket: plain,
        rejectUnauthorized: false,
        servername: tlsOptions.servername,
        ...tlsOptions,
      })
      socket = secure
      attach(secure)
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', resolve)
        secure.once('error', reject)
      })
      return reply
    },
    async close() {
      if (!ended) {
        socket.destroy()
        ended = true
        reader.end(new Error('connection closed by client'))
        markClosed()
      }
    },
  }
}

export interface SendMailOptions {
  host?: string
  helo?: string
  from: string
  to: string[]
  /** The message. Line ends become CRLF and lines starting with '.' are dot-stuffed, like a real client. */
  data: string | Buffer
  timeoutMs?: number
}

/** Every reply of one sendMail() dialogue; a field is missing when its command was not sent. */
export interface SendMailResult {
  greeting?: string
  ehlo?: string
  mail?: string
  rcpt: string[]
  /** The reply to DATA itself, normally 354. */
  data?: string
  /** The reply after the final '.', the server's verdict on the message. */
  message?: string
  quit?: string
  /** Every reply in order, for asserting on the whole dialogue. */
  replies: string[]
  /** Why the dialogue stopped early (connection refused, closed, timed out). */
  error?: string
}

/**
 * EHLO, MAIL, RCPT for each recipient, DATA, message, QUIT, one command at a time. Stops where a
 * client would (MAIL refused, no RCPT accepted, DATA not 354) and still sends QUIT. Never throws.
 */
export async function sendMail(port: number, options: SendMailOptions): Promise<SendMailResult> {
  const result: SendMailResult = { rcpt: [], replies: [] }
  let session: SmtpSession | undefined
  const record = (reply: string) => {
    result.replies.push(reply)
    return reply
  }
  try {
    session = await smtpSession(port, { host: options.host, timeoutMs: options.timeoutMs })
    result.greeting = record(session.greeting)
    if (!session.greeting.startsWith('2')) return result
    result.ehlo = record(await session.send(`EHLO ${options.helo ?? 'client.test'}`))
    if (!result.ehlo.startsWith('2')) return result
    result.mail = record(await session.send(`MAIL FROM:<${options.from}>`))
    if (result.mail.startsWith('2')) {
      for (const rcpt of options.to) result.rcpt.push(record(await session.send(`RCPT TO:<${rcpt}>`)))
      if (result.rcpt.some((reply) => reply.startsWith('2'))) {
        result.data = record(await session.send('DATA'))
        if (result.data.startsWith('3')) result.message = record(await session.sendRaw(dataBytes(options.data)))
      }
    }
    result.quit = record(await session.send('QUIT'))
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err)
  } finally {
    await session?.close()
  }
  return result
}

/** RFC 5321 §4.5.2: dot-stuffing; §2.3.8: lines end in CRLF; then the terminating '.'. */
export function dataBytes(data: string | Buffer): Buffer {
  const text = typeof data === 'string' ? Buffer.from(data, 'utf8').toString('latin1') : data.toString('latin1')
  const lines = text.replace(/\r?\n/g, '\n').split('\n')
  if (lines.at(-1) === '') lines.pop()
  const stuffed = lines.map((line) => (line.startsWith('.') ? `.${line}` : line))
  return Buffer.from(`${stuffed.map((line) => `${line}\r\n`).join('')}.\r\n`, 'latin1')
}
