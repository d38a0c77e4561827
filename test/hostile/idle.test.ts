// Slow and idle clients on every listener: :25, 587, 465 (implicit TLS) and the alternate port
// (implicit TLS). On each, a few hundred clients trickle a command a byte a second (on :25 some
// trickle their message after DATA too) and a thousand more connect and say nothing. Past
// SMTP_MAX_CLIENTS the listener answers `421 4.3.2`; SMTP_TIMEOUT's deadline closes the silent and
// the trickling alike with `421 4.4.2 ... timeout exceeded` (smtp-server alone counted silence only,
// so a byte a second kept a session forever); the service's memory stays bounded; swaks gets
// through once they are gone.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import tls from 'node:tls'
import { startAppliance } from '../support/appliance.js'
import { servicePid } from '../support/supervisor.js'
import { swaks, lastReply } from '../support/swaks.js'
import { Wire, type Mode } from './wire.js'
import { LISTENERS } from './listeners.js'
import { FULL, record, rssKiB, sampleMemory, totalRestarts, waitForListeners } from './figures.js'

// Fewer on the implicit TLS ports: every idle client there costs a handshake, and all must be
// open before the first ones' deadline (SMTP_TIMEOUT) for the limit to be held while we look.
const LIMIT = FULL ? 2000 : 500
const IDLE = { plain: FULL ? 3000 : 1000, implicit: FULL ? 1500 : 500 }
const TRICKLE = { plain: FULL ? 500 : 200, implicit: FULL ? 300 : 100 }
/** :25 only: clients that trickle their message after 354 (submission would need AUTH first). */
const TRICKLE_DATA = 20
const TIMEOUT_S = 30
const TIMED_OUT = /^421 4\.4\.2 mx\.ours\.example Error: timeout exceeded$/
const BUSY = /^421 4\.3\.2 mx\.ours\.example Too many connected clients/

/** A client connection that records every line the server sent and when it closed. */
class Client {
  lines: string[] = []
  greetedAt: number | null = null
  closedAt: number | null = null
  readonly greeting: Promise<string>
  private buf = ''
  private read = 0
  private waiters: (() => void)[] = []

  constructor(
    readonly socket: net.Socket,
    opened: number,
  ) {
    const wake = (): void => this.waiters.splice(0).forEach((w) => w())
    socket.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1')
      let i: number
      while ((i = this.buf.indexOf('\r\n')) !== -1) {
        this.lines.push(this.buf.slice(0, i))
        this.greetedAt ??= Date.now() - opened
        this.buf = this.buf.slice(i + 2)
      }
      wake()
    })
    socket.on('error', () => undefined)
    socket.on('close', () => {
      this.closedAt = Date.now() - opened
      wake()
    })
    this.greeting = this.reply()
  }

  /** The next reply line not read yet, or 'closed'. */
  private nextLine(): Promise<string> {
    if (this.read < this.lines.length) return Promise.resolve(this.lines[this.read++])
    if (this.closedAt !== null) return Promise.resolve('closed')
    return new Promise((resolve) => this.waiters.push(() => resolve(this.nextLine())))
  }

  /** The last line of the next reply (RFC 5321 §4.2: "ddd-" lines continue it), or 'closed'. */
  async reply(): Promise<string> {
    let line: string
    while (/^\d{3}-/.test((line = await this.nextLine())));
    return line
  }

  async command(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`)
    return this.reply()
  }

  get last(): string {
    return this.lines.at(-1) ?? ''
  }
}

function connect(port: number, mode: Mode, opened: number): Client {
  const socket =
    mode === 'implicit' ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }) : net.connect({ host: '127.0.0.1', port })
  return new Client(socket, opened)
}

async function openMany(n: number, port: number, mode: Mode, opened: number): Promise<Client[]> {
  const out: Client[] = []
  for (let i = 0; i < n; i++) {
    out.push(connect(port, mode, opened))
    // Let the accept queue (and TLS handshakes) drain.
    if (i % 100 === 99) await new Promise((r) => setTimeout(r, mode === 'implicit' ? 100 : 20))
  }
  await Promise.all(out.map((c) => c.greeting))
  return out
}

/** The most sessions open at one time, from the clients' greeting and close times. */
function mostAtOnce(clients: Client[]): number {
  const events = clients.flatMap((c) => [
    [c.greetedAt ?? 0, 1],
    [c.closedAt ?? Infinity, -1],
  ])
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let open = 0
  let most = 0
  for (const [, d] of events) most = Math.max(most, (open += d))
  return most
}

test(
  'idle and byte-per-second clients on :25, 587, 465 and the alternate port: 421 4.3.2 past the limit, 421 4.4.2 at the deadline, memory bounded, swaks gets through',
  { timeout: 600_000 },
  async (t) => {
    const app = await startAppliance({
      timeoutMs: 120_000,
      services: ['smtp-ingress', 'delivery', 'submission'],
      users: { 'alice@ours.example': 'pw' },
      // Every client here comes from 127.0.0.1: no limit per address (client-limit.test.ts has it),
      // so that they fill SMTP_MAX_CLIENTS.
      env: { SMTP_MAX_CLIENTS: String(LIMIT), SMTP_MAX_CLIENTS_PER_IP: '0', SMTP_TIMEOUT: `${TIMEOUT_S}s`, SUBMISSION_ALT_PORT: '0' },
    })
    t.after(() => app.stop())
    await waitForListeners(app, 'submission', ['submission', 'submissions', 'alt'])
    const failures: string[] = []

    for (const l of LISTENERS) {
      const started = Date.now()
      const port = app.port(l.service, l.listener)
      const pid = await servicePid(app, l.service)
      const mem = sampleMemory(app)
      const baseline = Math.round((await rssKiB(pid)) / 1024)
      const opened = Date.now()

      // Byte-per-second clients first, so that they hold slots: a command that never ends ...
      const trickling = await openMany(l.mode === 'implicit' ? TRICKLE.implicit : TRICKLE.plain, port, l.mode, opened)
      const timers: NodeJS.Timeout[] = []
      t.after(() => timers.forEach(clearInterval))
      const command = 'EHLO trickle.example.and.on.and.on.'
      trickling.forEach((c, k) => {
        let i = 0
        timers.push(setInterval(() => c.socket.write(command[i++ % command.length]), 1000 + (k % 10) * 10))
      })
      // ... and on :25, a message after 354 (1 byte a second against SMTP_MIN_DATA_RATE's 500).
      const inData = l.mode === 'plain' && l.service === 'smtp-ingress' ? await openMany(TRICKLE_DATA, port, l.mode, opened) : []
      for (const c of inData) {
        let reply = ''
        for (const cmd of ['EHLO slow.example', 'MAIL FROM:<a@remote.example>', 'RCPT TO:<alice@ours.example>', 'DATA'])
          reply = await c.command(cmd)
        if (!reply.startsWith('354')) failures.push(`${l.name}: DATA answered ${reply}`)
        timers.push(setInterval(() => c.socket.write('x'), 1000))
      }

      // Idle clients: connect (and finish the TLS handshake) and say nothing.
      const idle = await openMany(l.mode === 'implicit' ? IDLE.implicit : IDLE.plain, port, l.mode, opened)
      const openedInS = Math.round((Date.now() - opened) / 1000)
      const atLimit = Math.round((await rssKiB(pid)) / 1024)
      const greetings = [...trickling, ...inData, ...idle].map((c) => c.lines[0] ?? 'closed')
      const ok = greetings.filter((g) => g.startsWith('220')).length
      const busy = greetings.filter((g) => BUSY.test(g)).length
      const other = greetings.filter((g) => !g.startsWith('220') && !BUSY.test(g))
      // A real client at the limit is told to come back later, with an enhanced code.
      const refused = await Wire.open(port, { mode: l.mode }).then(
        (w) => (w.close(), w.greeting),
        (e: Error) => `error ${e.message}`,
      )

      // The deadline closes the silent and the trickling alike.
      const all = [...trickling, ...inData, ...idle]
      const until = Date.now() + (TIMEOUT_S + 30) * 1000
      while (all.some((c) => c.closedAt === null) && Date.now() < until) await new Promise((r) => setTimeout(r, 250))
      timers.forEach(clearInterval)
      const greeted = (cs: Client[]): Client[] => cs.filter((c) => c.lines[0]?.startsWith('220'))
      const timedOut = (cs: Client[]): number => greeted(cs).filter((c) => c.closedAt !== null && TIMED_OUT.test(c.last)).length
      const stillOpen = all.filter((c) => c.closedAt === null).length
      const latestClose = Math.max(0, ...greeted(all).map((c) => c.closedAt ?? 0))
      const concurrent = mostAtOnce(greeted(all))
      const after = Math.round((await rssKiB(pid)) / 1024)
      for (const c of all) c.socket.destroy()

      // A real client gets through now.
      const real = await swaks(['--server', `127.0.0.1:${port}`, '--to', 'alice@ours.example', '--timeout', '60', ...l.real], {
        timeoutMs: 90_000,
      })
      const realReply = lastReply(real, '.') ?? `swaks exit ${real.code}`
      await mem.stop()
      const peak = mem.peak()[l.service] ?? atLimit

      const counts = {
        trickling: `${timedOut(trickling)}/${greeted(trickling).length}`,
        inData: `${timedOut(inData)}/${greeted(inData).length}`,
        idle: `${timedOut(idle)}/${greeted(idle).length}`,
      }
      record({
        test: `slow and idle clients, ${l.name} (idle.test.ts)`,
        load: `${trickling.length} clients sending a command byte a second${inData.length ? `, ${inData.length} a message byte a second after DATA` : ''}, then ${idle.length} idle connections${l.mode === 'implicit' ? ' (TLS handshake done)' : ''}, opened in ${openedInS} s; SMTP_MAX_CLIENTS=${LIMIT}, SMTP_TIMEOUT=${TIMEOUT_S}s`,
        injected: 'connections that never speak; commands and messages that never end, a byte a second',
        restarts: await totalRestarts(app),
        peakRssMiB: peak,
        result: `greetings: ${ok} × 220, ${busy} × 421 4.3.2, ${other.length} other; at most ${concurrent} sessions at once; a real client at the limit: ${JSON.stringify(refused.slice(0, 48))}; closed by 421 4.4.2 timeout exceeded: trickling ${counts.trickling}${inData.length ? `, in DATA ${counts.inData}` : ''}, idle ${counts.idle}, the last ${Math.round(latestClose / 1000)} s after the first connection (${stillOpen} still open); ${l.service} RSS ${baseline} MiB before, ${atLimit} MiB at the limit, ${after} MiB after, peak ${peak} MiB; swaks afterwards: ${realReply.slice(0, 40)}`,
        durationS: Math.round((Date.now() - started) / 1000),
      })

      const check = (cond: boolean, what: string): void => void (cond || failures.push(`${l.name}: ${what}`))
      // Seen from the client, a slot is freed a little after the server freed it: a small margin.
      check(concurrent <= LIMIT + 10, `${concurrent} sessions at once (limit ${LIMIT})`)
      check(busy > 0 && ok >= Math.min(all.length, LIMIT) - 20, `${ok} greeted, ${busy} told 421 4.3.2 (limit ${LIMIT})`)
      check(other.length === 0, `other greetings: ${JSON.stringify(other.slice(0, 3))}`)
      check(BUSY.test(refused), `a real client at the limit got ${JSON.stringify(refused)}`)
      check(stillOpen === 0, `${stillOpen} connections still open`)
      check(timedOut(trickling) === greeted(trickling).length, `trickling clients closed by the deadline: ${counts.trickling}`)
      check(timedOut(inData) === greeted(inData).length, `clients in DATA closed by the deadline: ${counts.inData}`)
      check(timedOut(idle) === greeted(idle).length, `idle clients closed by the deadline: ${counts.idle}`)
      check(real.code === 0 && /^250 2\.0\.0 /.test(realReply), `swaks afterwards: exit ${real.code}, ${realReply}`)
      check(peak - baseline < 300, `RSS grew from ${baseline} to ${peak} MiB`)
    }
    assert.deepEqual(failures, [])
    assert.equal(await totalRestarts(app), 0)
  },
)
