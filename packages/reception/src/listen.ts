// One SMTPServer listening on one port through several sockets (SO_REUSEPORT), so that a burst of
// new connections is accepted in step with the sessions already open. Since libuv 1.45 (Node 20)
// a listening socket yields one accept(2) per event-loop turn (libuv PR #3696): under load, with
// one connection per message, new connections waited in the kernel's accept queue (p50 18 ms,
// p99 180 ms here, bench/README.md) while the ones open were served. The kernel spreads the
// connections over the sockets, and each turn accepts one from each.
//
// Node has `reusePort` from 22.12 and 23.1 (the image's Node 22 has it); older runtimes listen on
// one socket as before. A plain socket is bound first, alone: if the port is taken (by another
// Facteur too), that fails as it always did, never shared. A socket without SO_REUSEPORT cannot
// join the group afterwards, so a second server started by mistake still gets EADDRINUSE.
import net, { type AddressInfo } from 'node:net'
import type { SMTPServer } from 'smtp-server'

/** Sockets per listening port where the runtime can share one. */
const SOCKETS = 4

const [major, minor] = process.versions.node.split('.').map(Number)
/** net.Server#listen's `reusePort` option (Node 22.12, 23.1): ignored, not refused, before. */
export const REUSE_PORT = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)

export type Listening = { port: number; address: string; sockets: number; close(): Promise<void> }

export async function listenShared(server: SMTPServer, port: number, host: string): Promise<Listening> {
  if (!REUSE_PORT) {
    await listen(server.server, { port, host })
    return listening(server, [])
  }
  // The port checked free (and picked, for port 0) by a socket of its own, then shared.
  const probe = net.createServer()
  await listen(probe, { port, host })
  const picked = (probe.address() as AddressInfo).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const shared = { port: picked, host, reusePort: true } as net.ListenOptions
  await listen(server.server, shared)
  const extra: net.Server[] = []
  try {
    for (let i = 1; i < SOCKETS; i++) {
      // Made with the options smtp-server gave its own (net reads its socket options there); their
      // connections go where the first socket's go: smtp-server's handler and the guards.
      const s = net.createServer(server.options as net.ServerOpts, (socket) => server.server.emit('connection', socket))
      s.on('error', (err) => server.server.emit('error', err))
      extra.push(s)
      await listen(s, shared)
    }
  } catch (err) {
    for (const s of extra) s.close()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    throw err
  }
  return listening(server, extra)
}

function listen(s: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    s.once('error', reject)
    s.listen(options, () => {
      s.off('error', reject)
      resolve()
    })
  })
}

function listening(server: SMTPServer, extra: net.Server[]): Listening {
  const addr = server.server.address() as AddressInfo
  return {
    port: addr.port,
    address: addr.address,
    sockets: 1 + extra.length,
    close: async () => {
      // The extra sockets stop accepting first; smtp-server then closes its own and its sessions.
      await Promise.all(extra.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
