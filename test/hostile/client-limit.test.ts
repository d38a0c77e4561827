// One address holding connections on every listener (:25, 587, 465, the alternate port), with the
// default limits (SMTP_MAX_CLIENTS=200, SMTP_MAX_CLIENTS_PER_IP=50): it gets 50 sessions on the MX
// and 50 on submission (its three ports together), every other connection is answered
// `421 4.7.0` and closed at once (on the implicit-TLS ports, where the count starts at the accept,
// closed before the handshake: no reply can be sent before TLS), and real clients from other
// addresses send mail while it holds them. TRUSTED_NETWORKS are not counted; once the address lets
// go it gets in again.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import net from 'node:net'
import { once } from 'node:events'
import { swaks, lastReply } from '../support/swaks.js'
import { readMbox, waitForCount } from '../support/mbox.js'
import { Wire, type Mode } from './wire.js'
import { LISTENERS, startListeners } from './listeners.js'
import { record, totalRestarts } from './figures.js'

const PER_IP = 50
const ATTACK = 300
const REFUSED = /^421 4\.7\.0 mx\.ours\.example Too many connections from your address, try again later$/

/** Opens `n` connections from `localAddress`, 25 at a time; each with the first reply it got. */
async function openMany(port: number, mode: Mode, n: number, localAddress: string): Promise<{ w: Wire | null; first: string }[]> {
  const out: { w: Wire | null; first: string }[] = []
  for (let i = 0; i < n; i += 25) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(25, n - i) }, async () => {
        try {
          const w = await Wire.open(port, { mode, localAddress, timeoutMs: 30_000 })
          return { w, first: w.greeting }
        } catch (e) {
          return { w: null, first: `closed: ${(e as Error).message}` }
        }
      }),
    )
    out.push(...batch)
  }
  return out
}

test(
  'one address holding 300 connections on each listener gets 50 per service; the rest 421 4.7.0; others still send mail',
  { timeout: 300_000 },
  async (t) => {
    const started = Date.now()
    const { app, mem } = await startListeners(t, { SUBMISSION_ALT_PORT: '0', TRUSTED_NETWORKS: '127.0.0.4' })
    const listeners = LISTENERS.map((l) => ({ ...l, port: app.port(l.service, l.listener) }))
    // The attack: every listener at once (submission's three ports share one count).
    const held = await Promise.all(listeners.map((l) => openMany(l.port, l.mode, ATTACK, '127.0.0.2')))
    const greeted = held.map((cs) => cs.filter((c) => c.first.startsWith('220 ')).length)
    const refused = held.map((cs) => cs.filter((c) => REFUSED.test(c.first)).length)
    // Closed at the accept, before the TLS handshake: implicit-TLS listeners only.
    const closedBeforeTls = (c: { first: string }, i: number): boolean => listeners[i].mode === 'implicit' && c.first.startsWith('closed: ')
    const closed = held.map((cs, i) => cs.filter((c) => closedBeforeTls(c, i)).length)
    const other = held.flatMap((cs, i) => cs.filter((c) => !c.first.startsWith('220 ') && !REFUSED.test(c.first) && !closedBeforeTls(c, i)))
    // A refused connection is closed by the server, not left to its timeout.
    await new Promise((r) => setTimeout(r, 1000))
    const refusedOpen = held.flat().filter((c) => REFUSED.test(c.first) && c.w && !c.w.closed).length
    // While it holds them: real clients from another address, on every listener.
    const real = []
    for (const l of listeners) {
      const r = await swaks(['--server', `127.0.0.1:${l.port}`, '--to', 'alice@ours.example', '--timeout', '30', ...l.real], {
        timeoutMs: 60_000,
      })
      real.push(lastReply(r.stdout, '.') ?? `no reply: ${r.stdout.slice(-200)}`)
    }
    // A trusted network is not counted.
    const trusted = await openMany(listeners[0].port, 'plain', PER_IP + 20, '127.0.0.4')
    const trustedGreeted = trusted.filter((c) => c.first.startsWith('220 ')).length
    for (const c of [...held.flat(), ...trusted]) c.w?.close()
    // Let go: its places are free again (the server sees each close as it comes).
    await new Promise((r) => setTimeout(r, 1000))
    const again = []
    for (const l of listeners) {
      const [c] = await openMany(l.port, l.mode, 1, '127.0.0.2')
      again.push(c.first.slice(0, 3))
      c.w?.close()
    }
    const mbox = path.join(app.mailDir, 'alice')
    const delivered = await waitForCount(() => readMbox(mbox), listeners.length, 30_000).catch(() => readMbox(mbox))
    const restarts = await totalRestarts(app)
    await mem.stop()
    record({
      test: 'one address holding connections (client-limit.test.ts)',
      load: `${ATTACK} connections from one address on each of :25, 587, 465 and the alternate port at once, opened 25 at a time, held; SMTP_MAX_CLIENTS=200, SMTP_MAX_CLIENTS_PER_IP=${PER_IP} (the defaults); ${PER_IP + 20} from a TRUSTED_NETWORKS address`,
      injected: 'connections that are never used, from one address',
      sent: listeners.length,
      accepted: real.filter((r) => r.startsWith('250')).length,
      delivered: delivered.length,
      restarts,
      peakRssMiB: mem.max(),
      result: `greeted ${listeners.map((l, i) => `${l.name} ${greeted[i]}`).join(', ')} (submission's three ports share ${PER_IP}); 421 4.7.0 ${refused.reduce((a, b) => a + b, 0)} and closed before TLS ${closed.reduce((a, b) => a + b, 0)} (${listeners.map((l, i) => `${l.name} ${refused[i] + closed[i]}`).join(', ')}), each closed by the server (${refusedOpen} left open after 1 s); other replies ${other.length}${other.length ? ` (${other[0].first})` : ''}; swaks from another address while they were held: ${real.map((r) => r.slice(0, 3)).join('/')}; trusted address: ${trustedGreeted} of ${PER_IP + 20} greeted; after letting go: ${again.join('/')}`,
      durationS: Math.round((Date.now() - started) / 1000),
    })
    assert.equal(greeted[0], PER_IP, ':25')
    assert.equal(greeted[1] + greeted[2] + greeted[3], PER_IP, 'submission, its three ports together')
    assert.equal(refused.reduce((a, b) => a + b, 0) + closed.reduce((a, b) => a + b, 0), listeners.length * ATTACK - 2 * PER_IP)
    assert.deepEqual(other, [])
    assert.equal(refusedOpen, 0)
    for (const r of real) assert.match(r, /^250 /)
    assert.equal(trustedGreeted, PER_IP + 20)
    assert.deepEqual(again, ['220', '220', '220', '220'])
    assert.equal(delivered.length, listeners.length)
    assert.equal(restarts, 0)
  },
)

test(
  'one address opening 300 connections to 465 that never begin TLS holds 50; the rest are closed at once; others still send mail',
  { timeout: 120_000 },
  async (t) => {
    const started = Date.now()
    const { app, mem } = await startListeners(t)
    const port = app.port('submission', 'submissions')
    // Raw TCP, no ClientHello: before the count started at the accept, these held all of
    // SMTP_MAX_CLIENTS' places for handshakes (each up to SMTP_TIMEOUT) and nobody else got in.
    const sockets: net.Socket[] = []
    let closedByServer = 0
    for (let i = 0; i < ATTACK; i++) {
      const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' })
      s.on('error', () => undefined)
      s.on('close', () => closedByServer++)
      sockets.push(s)
    }
    t.after(() => sockets.forEach((s) => s.destroy()))
    await Promise.all(sockets.map((s) => once(s, 'connect').catch(() => undefined)))
    await new Promise((r) => setTimeout(r, 1000))
    const heldOpen = sockets.filter((s) => !s.destroyed && !s.closed).length
    const closedSoon = closedByServer
    const real = await swaks(
      [
        '--server',
        `127.0.0.1:${port}`,
        '--to',
        'alice@ours.example',
        '--timeout',
        '30',
        '--tlsc',
        '--auth',
        'PLAIN',
        '--auth-user',
        'alice@ours.example',
        '--auth-password',
        'pw',
        '--from',
        'alice@ours.example',
      ],
      { timeoutMs: 60_000 },
    )
    const reply = lastReply(real.stdout, '.') ?? `no reply: ${real.stdout.slice(-200)}`
    for (const s of sockets) s.destroy()
    await new Promise((r) => setTimeout(r, 1000))
    const [again] = await openMany(port, 'implicit', 1, '127.0.0.2')
    again.w?.close()
    const delivered = await waitForCount(() => readMbox(path.join(app.mailDir, 'alice')), 1, 30_000).catch(() => [])
    const restarts = await totalRestarts(app)
    await mem.stop()
    record({
      test: 'one address holding TLS handshakes (client-limit.test.ts)',
      load: `${ATTACK} TCP connections from one address to 465 that never send a ClientHello, held; SMTP_MAX_CLIENTS=200, SMTP_MAX_CLIENTS_PER_IP=${PER_IP} (the defaults)`,
      injected: 'implicit-TLS handshakes that never begin, from one address',
      sent: 1,
      accepted: reply.startsWith('250') ? 1 : 0,
      delivered: delivered.length,
      restarts,
      peakRssMiB: mem.max(),
      result: `${heldOpen} held open after 1 s, ${closedSoon} closed by the server within it (before TLS: no reply possible); swaks from another address over 465 while they were held: ${reply.slice(0, 3)}; after letting go: ${again.first.slice(0, 3)}`,
      durationS: Math.round((Date.now() - started) / 1000),
    })
    assert.equal(heldOpen, PER_IP)
    assert.equal(closedSoon, ATTACK - PER_IP)
    assert.match(reply, /^250 /)
    assert.match(again.first, /^220 /)
    assert.equal(delivered.length, 1)
    assert.equal(restarts, 0)
  },
)
