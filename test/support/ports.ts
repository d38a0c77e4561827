// Loopback ports for test daemons: pick a free one, wait until something listens on it.
import { connect, createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * A TCP port on 127.0.0.1 that was free a moment ago: bind port 0, read the number, close.
 * Another process can take it before the caller binds it; good enough for tests on one host.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, host, () => {
      const address = server.address()
      if (address === null || typeof address === 'string') {
        server.close()
        reject(new Error('freePort: listening socket has no port'))
        return
      }
      server.close(() => resolve(address.port))
    })
  })
}

/** True once a TCP connection to host:port succeeds, within one attempt's timeout. */
export async function canConnect(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host })
    const done = (ok: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/**
 * Resolves when host:port accepts TCP connections; rejects after timeoutMs or when signal aborts.
 * Polls every 50 ms, so at most timeoutMs / 50 attempts.
 */
export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 10_000, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (signal?.aborted) throw new Error(`stopped waiting for ${host}:${port}`)
    const left = deadline - Date.now()
    if (await canConnect(port, host, Math.max(1, Math.min(1000, left)))) return
    await sleep(50)
  }
  throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`)
}
