// The PROXY protocol's version 2 (HAProxy's binary header: what `send-proxy-v2` and Traefik's
// proxyProtocol send by default), next to the version 1 text header smtp-server reads itself.
// From a PROXY_TRUSTED peer, a connection that starts with the v2 signature is read here: its
// source address becomes the client's; a LOCAL header (a proxy's own health check) keeps the
// peer's. Anything else from that peer goes to smtp-server's version 1 reader as before.
// https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt §2.2
import { randomBytes } from 'node:crypto'
import { SocketAddress, type Socket } from 'node:net'
import type { SMTPServer } from 'smtp-server'

/** §2.2: the 12 bytes every version 2 header starts with. */
const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')
/** Address block and TLVs; HAProxy's own limit on what it sends is far below. */
const MAX_LENGTH = 1024

type SocketOptions = { id: string; remoteAddress?: string; remotePort?: number; ignore?: boolean }
type ProxyReader = (socket: Socket, callback: (err: Error | null, options?: SocketOptions) => void) => void
type Internals = { _handleProxy: ProxyReader; _expectsProxyHeader: (socket: Socket) => boolean }

export class ProxyHeaderError extends Error {
  override name = 'ProxyHeaderError'
}

/** The v2 header at the start of `data`: its length, the source it names (null: LOCAL, or no address); undefined while incomplete. */
export function parseProxyV2(data: Buffer): { length: number; source: { address: string; port: number } | null } | undefined {
  if (data.length < 16) return undefined
  const version = data[12] >> 4
  const command = data[12] & 0x0f
  if (version !== 2 || command > 1) throw new ProxyHeaderError(`PROXY v2: version ${version}, command ${command}`)
  const length = data.readUInt16BE(14)
  if (length > MAX_LENGTH) throw new ProxyHeaderError(`PROXY v2: ${length} bytes of addresses`)
  if (data.length < 16 + length) return undefined
  const family = data[13] >> 4
  const block = data.subarray(16, 16 + length)
  // LOCAL (command 0): the proxy speaking for itself; UNSPEC or a UNIX socket: no address to take.
  if (command === 0 || family === 0 || family === 3) return { length: 16 + length, source: null }
  if (family === 1 && length >= 12)
    return { length: 16 + length, source: { address: [...block.subarray(0, 4)].join('.'), port: block.readUInt16BE(8) } }
  if (family === 2 && length >= 36) {
    const groups = Array.from({ length: 8 }, (_, i) => block.readUInt16BE(i * 2).toString(16))
    const address = new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address
    return { length: 16 + length, source: { address, port: block.readUInt16BE(32) } }
  }
  throw new ProxyHeaderError(`PROXY v2: family ${family} with ${length} bytes of addresses`)
}

/** Makes `server` (built with useProxy) read version 2 headers as well as version 1. */
export function acceptProxyV2(server: SMTPServer): void {
  const internals = server as unknown as Internals
  const readV1 = internals._handleProxy.bind(server)
  internals._handleProxy = (socket, callback) => {
    if (!internals._expectsProxyHeader(socket)) return readV1(socket, callback)
    let data = Buffer.alloc(0)
    let finished = false
    /** Stops reading here; false when that was done already. */
    const detach = (): boolean => {
      if (finished) return false
      finished = true
      socket.removeListener('readable', onReadable)
      socket.removeListener('error', onGone)
      socket.removeListener('close', onGone)
      socket.removeListener('end', onGone)
      return true
    }
    const finish = (err: Error | null, options?: SocketOptions): void => {
      if (!detach()) return
      if (err) {
        socket.on('error', () => undefined)
        socket.destroy()
      }
      callback(err, options)
    }
    const onGone = (): void => finish(new ProxyHeaderError('Socket closed before the PROXY header was received'))
    const onReadable = (): void => {
      let chunk: Buffer | null
      while ((chunk = socket.read() as Buffer | null) !== null) data = Buffer.concat([data, chunk])
      const head = data.subarray(0, SIGNATURE.length)
      if (!SIGNATURE.subarray(0, head.length).equals(head)) {
        // Not version 2: smtp-server reads what came as a version 1 header.
        if (!detach()) return
        if (data.length) socket.unshift(data)
        return readV1(socket, callback)
      }
      let header
      try {
        header = parseProxyV2(data)
      } catch (err) {
        return finish(err as Error)
      }
      if (!header) return
      const rest = data.subarray(header.length)
      if (rest.length) socket.unshift(rest)
      const id = BigInt(`0x${randomBytes(10).toString('hex')}`)
        .toString(32)
        .padStart(16, '0')
      finish(null, header.source ? { id, remoteAddress: header.source.address, remotePort: header.source.port } : { id })
    }
    socket.on('readable', onReadable)
    socket.on('error', onGone)
    socket.on('close', onGone)
    socket.on('end', onGone)
  }
}
