// postsrsd (Debian's 1.x), the SRS daemon docker-mailserver and many Postfix hosts run, as a
// reference for our SRS addresses: its two Postfix tcp_table lookups on loopback ports.
import { createConnection } from 'node:net'
import { freePort } from './ports.js'
import { startOutage } from './process.js'

export type Postsrsd = {
  /** The forward table's answer for a sender: its SRS address, or the sender when not rewritten. */
  forward(sender: string): Promise<string>
  /** The reverse table's answer: the address an SRS address stands for; rejects with postsrsd's reply otherwise. */
  reverse(address: string): Promise<string>
  close(): Promise<void>
}

export async function startPostsrsd(opts: { secretFile: string; domain: string }): Promise<Postsrsd> {
  const forwardPort = await freePort()
  const reversePort = await freePort()
  const daemon = await startOutage(
    '/usr/sbin/postsrsd',
    ['-s', opts.secretFile, '-d', opts.domain, '-l', '127.0.0.1', '-4', '-f', String(forwardPort), '-r', String(reversePort)],
    reversePort,
  )
  return {
    forward: (sender) => lookup(forwardPort, sender),
    reverse: (address) => lookup(reversePort, address),
    close: () => daemon.stop(),
  }
}

/** One tcp_table(5) query: `get KEY`, answered `200 VALUE` (both %-encoded). */
function lookup(port: number, key: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port, host: '127.0.0.1' })
    let text = ''
    socket.setTimeout(5000, () => socket.destroy(new Error(`postsrsd did not answer ${key}`)))
    socket.on('error', reject)
    socket.on('connect', () => socket.write(`get ${encodeKey(key)}\n`))
    socket.on('data', (d) => {
      text += d.toString('latin1')
      if (!text.includes('\n')) return
      socket.end()
      const m = /^(\d{3}) (.*)\n/.exec(text)
      if (m && m[1] === '200') resolve(decodeURIComponent(m[2]))
      else reject(new Error(`postsrsd: ${text.trim()} (for ${key})`))
    })
  })
}

/** tcp_table(5)'s encoding: %XX for %, white space and what is not printable ASCII. */
function encodeKey(key: string): string {
  return key.replace(/[%\s\x00-\x1f\x7f-\xff]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}
