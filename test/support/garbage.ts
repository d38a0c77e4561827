// A server that speaks nonsense on a daemon's port, for what a real daemon cannot be made to do:
// answer garbage. Each connection gets the next speaker of the list, round robin; a speaker
// writes what it likes and may read what the client sends. Loopback only; close() ends every
// connection it holds.
import net from 'node:net'
import { randomBytes } from 'node:crypto'

/** Plays one connection; returns when it has nothing more to do (the connection may stay open). */
export type Speaker = { name: string; speak(socket: net.Socket): void }

export interface GarbageServer {
  port: number
  /** Connections taken so far, by speaker name. */
  connections: Record<string, number>
  close(): Promise<void>
}

export async function startGarbageServer(port: number, speakers: Speaker[]): Promise<GarbageServer> {
  const sockets = new Set<net.Socket>()
  const connections: Record<string, number> = {}
  let n = 0
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    const s = speakers[n++ % speakers.length]
    connections[s.name] = (connections[s.name] ?? 0) + 1
    s.speak(socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  return {
    port,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/** Printable nonsense of about `size` bytes with CRLF line ends. */
export function nonsense(size = 200): string {
  return (
    randomBytes(Math.ceil(size / 2))
      .toString('base64')
      .replace(/(.{60})/g, '$1\r\n') + '\r\n'
  )
}

/** Writes `text` (or random printable lines) and closes. */
export const sayAndClose = (name: string, text?: () => string): Speaker => ({
  name,
  speak: (s) => s.end(text ? text() : nonsense()),
})

/** Random binary bytes, then silence with the connection left open. */
export const binaryThenSilence: Speaker = { name: 'binary, then silence', speak: (s) => s.write(randomBytes(300)) }

/** One byte every `everyMs`, forever: a peer that is never idle and never done. */
export const trickle = (everyMs = 300): Speaker => ({
  name: `a byte every ${everyMs} ms`,
  speak(s) {
    const timer = setInterval(() => s.write(randomBytes(1)), everyMs)
    s.on('close', () => clearInterval(timer))
  },
})

/** `bytes` of random data as fast as the client reads, then close. */
export const flood = (bytes = 8 * 1024 * 1024): Speaker => ({ name: `${bytes >> 20} MiB flood`, speak: (s) => s.end(randomBytes(bytes)) })

/**
 * An SMTP server that plays along (RFC 5321 replies to EHLO, MAIL, RCPT, DATA) until `at`, then
 * answers `reply` there: the greeting, MAIL, or the end of the message data.
 */
export const smtpGarbled = (at: 'greeting' | 'MAIL' | 'dot', reply: string | (() => string | Buffer)): Speaker => ({
  name: `SMTP garbled at ${at}`,
  speak(s) {
    const bad = (): string | Buffer => (typeof reply === 'string' ? reply : reply())
    if (at === 'greeting') return void s.write(bad())
    s.write('220 garbage.example ESMTP\r\n')
    let buf = ''
    let inData = false
    s.setEncoding('latin1')
    s.on('data', (chunk: string) => {
      buf += chunk
      let i: number
      while ((i = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, i).replace(/\r$/, '')
        buf = buf.slice(i + 1)
        if (inData) {
          if (line !== '.') continue
          inData = false
          s.write(bad())
          continue
        }
        const verb = line.slice(0, 4).toUpperCase()
        if (verb === 'MAIL' && at === 'MAIL') s.write(bad())
        else if (verb === 'EHLO' || verb === 'HELO') s.write('250-garbage.example\r\n250 8BITMIME\r\n')
        else if (verb === 'DATA') {
          inData = true
          s.write('354 go ahead\r\n')
        } else if (verb === 'QUIT') s.end('221 bye\r\n')
        else s.write('250 ok\r\n')
      }
    })
  },
})
