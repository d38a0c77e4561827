// Slow and idle clients: a few thousand connections that say nothing, and a few that trickle one
// byte a second. Past SMTP_MAX_CLIENTS the MX answers 421; SMTP_TIMEOUT closes the idle ones;
// memory stays bounded; a real client gets through once the idle ones are gone.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { startAppliance } from '../support/appliance.js'
import { Wire } from './wire.js'
import { FULL, record, rssKiB, sampleMemory, totalRestarts } from './figures.js'
import { servicePid } from '../support/supervisor.js'

type Idle = { socket: net.Socket; greeting: Promise<string>; closedAt: number | null }

function idle(port: number, opened: number): Idle {
  const socket = net.connect({ host: '127.0.0.1', port })
  const c: Idle = { socket, greeting: Promise.resolve(''), closedAt: null }
  c.greeting = new Promise((resolve) => {
    let buf = ''
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1')
      if (buf.includes('\n')) resolve(buf.split('\r\n')[0])
    })
    socket.on('error', () => resolve(buf || 'error'))
    socket.on('close', () => {
      c.closedAt = Date.now() - opened
      resolve(buf.split('\r\n')[0] || 'closed')
    })
  })
  return c
}

test(
  'thousands of idle connections: 421 past the limit, closed by SMTP_TIMEOUT, memory bounded, a real client gets through',
  { timeout: 120_000 },
  async (t) => {
    const started = Date.now()
    const LIMIT = FULL ? 4000 : 1500
    const OPEN = FULL ? 5000 : 2000
    const app = await startAppliance({
      timeoutMs: 90_000,
      users: { 'alice@ours.example': 'pw' },
      env: { SMTP_MAX_CLIENTS: String(LIMIT), SMTP_TIMEOUT: '5s' },
    })
    t.after(() => app.stop())
    const mem = sampleMemory(app)
    const port = app.port('smtp-ingress', 'smtp')
    const ingressPid = await servicePid(app, 'smtp-ingress')
    const baseline = Math.round((await rssKiB(ingressPid)) / 1024)

    // Trickling clients: a byte every 500 ms of a command that never ends.
    const opened = Date.now()
    const trickle = Array.from({ length: 10 }, () => idle(port, opened))
    const timers = trickle.map((c) => setInterval(() => c.socket.write('N'), 500))
    t.after(() => timers.forEach(clearInterval))

    const conns: Idle[] = []
    for (let i = 0; i < OPEN; i++) {
      conns.push(idle(port, opened))
      if (i % 200 === 199) await new Promise((r) => setTimeout(r, 50)) // let the accept queue drain
    }
    const greetings = await Promise.all(conns.map((c) => c.greeting))
    const ok = greetings.filter((g) => g.startsWith('220')).length
    const busy = greetings.filter((g) => g.startsWith('421')).length
    const other = greetings.filter((g) => !g.startsWith('220') && !g.startsWith('421'))
    const atLimit = Math.round((await rssKiB(ingressPid)) / 1024)
    // A real client at the limit is told to come back later.
    const refused = await Wire.open(port).then(
      (w) => {
        w.close()
        return w.greeting
      },
      (e: Error) => `error ${e.message}`,
    )

    // SMTP_TIMEOUT closes the idle ones.
    const deadline = Date.now() + 20_000
    while (conns.some((c) => c.closedAt === null) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250))
    const stillOpen = conns.filter((c) => c.closedAt === null).length
    const closeTimes = conns.filter((c) => c.closedAt !== null && c.socket.bytesRead > 0).map((c) => c.closedAt!)
    const latestClose = Math.max(0, ...closeTimes)
    const trickleOpen = trickle.filter((c) => c.closedAt === null).length

    // A real client gets through now.
    const w = await Wire.open(port)
    await w.send('EHLO real.example')
    await w.send('MAIL FROM:<a@remote.example>')
    await w.send('RCPT TO:<alice@ours.example>')
    await w.send('DATA')
    const real = await w.send('Subject: real\r\n\r\nthrough\r\n.')
    w.close()
    for (const c of [...conns, ...trickle]) c.socket.destroy()
    const restarts = await totalRestarts(app)
    await mem.stop()
    record({
      test: 'slow and idle clients (idle.test.ts)',
      load: `${OPEN} idle connections to :25 with SMTP_MAX_CLIENTS=${LIMIT}, SMTP_TIMEOUT=5s, plus 10 clients trickling a byte every 500 ms`,
      injected: 'connections that never speak; commands that never end',
      restarts,
      peakRssMiB: mem.max(),
      result: `greetings: ${ok} × 220, ${busy} × 421, ${other.length} other; a real client at the limit: ${JSON.stringify(refused.slice(0, 40))}; idle closed by the timeout within ${Math.round(latestClose / 1000)} s (${stillOpen} still open); trickling clients still open after ${Math.round((Date.now() - opened) / 1000)} s: ${trickleOpen}/10; ingress RSS ${baseline} MiB idle, ${atLimit} MiB with ${ok} connections; the real client afterwards: ${real.slice(0, 9)}`,
      durationS: Math.round((Date.now() - started) / 1000),
    })
    assert.ok(ok >= LIMIT - 20 && ok <= LIMIT, `${ok} greeted`)
    assert.ok(busy >= OPEN - LIMIT - 20, `${busy} told 421`)
    assert.deepEqual(other, [])
    assert.match(refused, /^421 /)
    assert.equal(stillOpen, 0)
    assert.ok(latestClose < 15_000, `the last idle connection closed after ${latestClose} ms`)
    assert.match(real, /^250 /)
    assert.ok(atLimit - baseline < 300, `RSS grew from ${baseline} to ${atLimit} MiB`)
    assert.equal(restarts, 0)
  },
)
