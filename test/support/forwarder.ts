// A TCP forwarder on a loopback address of our choosing: lets several test MX servers (each on
// 127.0.0.1:<its own port>) answer on 127.0.0.2:P, 127.0.0.3:P ... with one common port P, the
// OUTBOUND_PORT that delivery uses for every MX. The target can be switched (a host that failed
// now answers). Loopback only.
import net from 'node:net'

export interface Forwarder {
  host: string
  port: number
  /** Sends connections to 127.0.0.1:port from now on; open ones are cut, as by a server restart. */
  setTarget(port: number): void
  /** Connections accepted so far. */
  readonly connections: number
  close(): Promise<void>
}

export async function startForwarder(host: string, port: number, targetPort: number): Promise<Forwarder> {
  if (!host.startsWith('127.')) throw new Error(`startForwarder: ${host} is not a loopback address`)
  let target = targetPort
  let connections = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    connections++
    const upstream = net.connect({ host: '127.0.0.1', port: target })
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => undefined)
    }
    client.pipe(upstream)
    upstream.pipe(client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return {
    host,
    port,
    setTarget(p) {
      target = p
      for (const s of sockets) s.destroy()
    },
    get connections() {
      return connections
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
