// Outbound delivery's limits and last resorts, end to end: connections shared and capped per
// destination, OUTBOUND_TLS=require, OUTBOUND_BIND_ADDRESS, ORCPT passed on (RFC 3461 §5.2.1),
// the double bounce to the postmaster, and expiry after MAX_QUEUE_LIFETIME (RFC 3463 X.4.7).
// The remote hosts are scripted MX servers (smtp-server, with STARTTLS where asked) on 127.0.0.1,
// each reached through a TRANSPORT_MAP entry; delivery connects from 127.0.0.2.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { sendPlain, queuedFor, waitFor } from './support/queue.js'
import { startAppliance, type Appliance } from './support/appliance.js'
import { startScriptedMx, type ScriptedMx } from './support/scripted-mx.js'
import { smtpSession } from './support/smtp-session.js'
import { readMbox, waitForCount } from './support/mbox.js'
import { openSpool, type Spool, type QueueEntry } from '@facteur/spool'

const CONCURRENCY = 2
const BURST = 30

let a: Appliance
let spool: Spool
let burst: ScriptedMx
let plain: ScriptedMx
let later: ScriptedMx
let dead: ScriptedMx
let nodsn: ScriptedMx

before(async () => {
  burst = await startScriptedMx({ tls: true, dsn: true, hostname: 'mx.burst.example' })
  plain = await startScriptedMx({ hostname: 'mx.plain.example' })
  later = await startScriptedMx({ tls: true, hostname: 'mx.later.example', rcpt: { 'wait@later.example': '451 4.7.1 Try again later' } })
  dead = await startScriptedMx({
    tls: true,
    hostname: 'mx.dead.example',
    rcpt: { 'gone@dead.example': '550 5.1.1 No such user', 'nobody@dead.example': '550 5.1.1 No such user' },
  })
  nodsn = await startScriptedMx({ tls: true, hostname: 'mx.nodsn.example' })
  const route = (domain: string, mx: ScriptedMx): string => `${domain}=[127.0.0.1]:${mx.port}`
  a = await startAppliance({
    services: ['smtp-ingress', 'delivery', 'submission'],
    users: { 'alice@ours.example': 'pw-alice', 'pm@ours.example': 'pw-pm', 'erin@ours.example': 'pw-erin' },
    env: {
      TRUSTED_NETWORKS: '127.0.0.1',
      POSTMASTER_ADDRESS: 'pm@ours.example',
      TRANSPORT_MAP: [
        route('burst.example', burst),
        route('plain.example', plain),
        route('later.example', later),
        route('dead.example', dead),
        route('nodsn.example', nodsn),
      ].join(','),
      OUTBOUND_TLS: 'require',
      OUTBOUND_BIND_ADDRESS: '127.0.0.2',
      OUTBOUND_CONCURRENCY_PER_DOMAIN: String(CONCURRENCY),
      DELIVERY_WORKERS: '16',
      QUEUE_RETRY_MIN: '1s',
      QUEUE_RETRY_MAX: '2s',
      MAX_QUEUE_LIFETIME: '12s',
      DELAY_WARNING: 'off',
    },
  })
  spool = await openSpool(a.spoolDir)
})

after(async () => {
  await a?.stop()
  for (const mx of [burst, plain, later, dead, nodsn]) await mx?.close()
})

const mbox = (user: string): Promise<string[]> => readMbox(path.join(a.mailDir, user))

const send = (from: string, to: string[], subject: string): Promise<void> => sendPlain(a.port('smtp-ingress', 'smtp'), from, to, subject)
const queued = (rcpt: string): Promise<QueueEntry | undefined> => queuedFor(spool, rcpt)
const until = <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> =>
  waitFor(what, probe, { timeoutMs, context: () => a.output().slice(-3000) })

test(`a burst of ${BURST} messages to one host goes over at most OUTBOUND_CONCURRENCY_PER_DOMAIN connections, each reused`, async (t) => {
  // Eight clients at once, so that many messages wait for delivery together.
  const ids = Array.from({ length: BURST }, (_, i) => i)
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = ids.shift(); i !== undefined; i = ids.shift()) await send('alice@ours.example', [`r${i}@burst.example`], `burst ${i}`)
    }),
  )
  const got = await until('every burst message at the MX', async () => {
    const m = burst.messages.filter((x) => x.to.some((r) => /^r\d+@burst\.example$/.test(r)))
    return m.length >= BURST && m
  })
  const perConnection = new Map<string, number>()
  for (const m of got) perConnection.set(m.session, (perConnection.get(m.session) ?? 0) + 1)
  t.diagnostic(
    `${burst.connections} connection(s), at most ${burst.maxOpen} at once; messages per connection: ${[...perConnection.values()].join(', ')}`,
  )
  assert.equal(got.length, BURST, 'each message once')
  assert.ok(burst.maxOpen <= CONCURRENCY, `at most ${CONCURRENCY} connections at once, saw ${burst.maxOpen}`)
  assert.ok(burst.connections < BURST / 3, `connections are reused: ${burst.connections} for ${BURST} messages`)
  assert.ok(Math.max(...perConnection.values()) > 1, 'one connection carried several messages')
  assert.ok(
    got.every((m) => m.tls),
    'every message went over STARTTLS',
  )
})

test('OUTBOUND_BIND_ADDRESS: the MX sees the connection come from 127.0.0.2', async () => {
  await send('alice@ours.example', ['bound@burst.example'], 'bound')
  const m = await until('the message at the MX', async () => burst.messages.find((x) => x.to.includes('bound@burst.example')))
  assert.equal(m.remoteAddress, '127.0.0.2')
  assert.equal(m.helo, 'mx.ours.example')
})

test('OUTBOUND_TLS=require: an MX without STARTTLS gets nothing, and the message is deferred saying why', async () => {
  await send('alice@ours.example', ['clear@plain.example'], 'no tls there')
  const entry = await until('a deferral', async () => {
    const e = await queued('clear@plain.example')
    return e?.envelope.recipients[0].status === 'deferred' && e
  })
  const reason = entry.envelope.recipients[0].lastError ?? ''
  assert.match(reason, /^4\d\d 4\.7\.10 /, reason)
  assert.match(reason, /STARTTLS/i, reason)
  assert.match(reason, /mx\.plain\.example|127\.0\.0\.1/, 'names the host')
  assert.ok(plain.connections >= 1, 'the MX was tried')
  assert.equal(plain.messages.length, 0, 'nothing was sent in clear')
  // Its next attempt may have it in active/ for a moment (QUEUE_RETRY_MIN 1s): removed once back.
  await until('the deferred message removed', async () => spool.remove(entry.id))
})

test('ORCPT and NOTIFY given at submission reach an MX that announces DSN; an MX without DSN gets none', async () => {
  const s = await smtpSession(a.port('submission', 'submission'))
  try {
    await s.send('EHLO client.test')
    assert.match(await s.startTls(), /^220/)
    await s.send('EHLO client.test')
    assert.match(await s.send(`AUTH PLAIN ${Buffer.from('\0alice@ours.example\0pw-alice').toString('base64')}`), /^235/)
    assert.match(await s.send('MAIL FROM:<alice@ours.example> RET=HDRS ENVID=env+2B1'), /^250/)
    assert.match(await s.send('RCPT TO:<carol@burst.example> NOTIFY=FAILURE ORCPT=rfc822;Carol+2Bx@burst.example'), /^250/)
    assert.match(await s.send('RCPT TO:<dave@burst.example> NOTIFY=FAILURE'), /^250/)
    assert.match(await s.send('RCPT TO:<eve@burst.example> ORCPT=rfc822;eve@burst.example'), /^250/)
    assert.match(await s.send('RCPT TO:<nora@nodsn.example> NOTIFY=FAILURE ORCPT=rfc822;nora@nodsn.example'), /^250/)
    assert.match(await s.send('DATA'), /^354/)
    assert.match(
      await s.sendRaw(
        'From: <alice@ours.example>\r\nTo: <carol@burst.example>\r\nSubject: orcpt\r\nDate: Sat, 28 Nov 2026 09:00:00 +0000\r\n\r\nHi.\r\n.\r\n',
      ),
      /^250/,
    )
  } finally {
    await s.close()
  }
  const carol = await until('carol at the MX', async () => burst.messages.find((x) => x.to.includes('carol@burst.example')))
  const dave = await until('dave at the MX', async () => burst.messages.find((x) => x.to.includes('dave@burst.example')))
  assert.deepEqual(carol.rcptDsn[carol.to.indexOf('carol@burst.example')], { notify: ['FAILURE'], orcpt: 'rfc822;Carol+x@burst.example' })
  assert.deepEqual(dave.rcptDsn[dave.to.indexOf('dave@burst.example')], { notify: ['FAILURE'], orcpt: undefined })
  const eve = await until('eve at the MX', async () => burst.messages.find((x) => x.to.includes('eve@burst.example')))
  assert.equal(
    eve.rcptDsn[eve.to.indexOf('eve@burst.example')]?.orcpt,
    'rfc822;eve@burst.example',
    'passed on even when it names the same address',
  )
  const nora = await until('nora at the MX', async () => nodsn.messages.find((x) => x.to.includes('nora@nodsn.example')))
  assert.equal(nora.rcptDsn[0], undefined, 'no DSN parameters to a host that does not offer DSN')
})

test('a bounce that cannot be delivered goes to the postmaster, once, and no further', async () => {
  await send('nobody@dead.example', ['gone@dead.example'], 'double bounce')
  const [notice] = await waitForCount(() => mbox('pm'), 1, 30_000)
  assert.match(notice, /^Return-Path: <>$/m)
  assert.match(notice, /^To: <pm@ours\.example>$/m)
  assert.match(notice, /^Final-Recipient: rfc822; nobody@dead\.example$/m)
  assert.match(notice, /^Action: failed$/m)
  assert.match(notice, /^Status: 5\.1\.1$/m)
  // The returned message is the bounce that failed, which returned the original.
  assert.match(notice, /^Subject: Undelivered Mail Returned to Sender$/m)
  assert.match(notice, /^Final-Recipient: rfc822; gone@dead\.example$/m)
  await new Promise((r) => setTimeout(r, 5000))
  assert.equal((await mbox('pm')).length, 1, 'one notice to the postmaster')
  assert.deepEqual(
    dead.refused.map((x) => `${x.from} -> ${x.to}`),
    ['nobody@dead.example -> gone@dead.example', ' -> nobody@dead.example'],
    'the original once, its bounce once, nothing after',
  )
  assert.equal(await queued('nobody@dead.example'), undefined)
  assert.equal(await queued('pm@ours.example'), undefined)
})

test('a message still deferred after MAX_QUEUE_LIFETIME bounces with a DSN saying it expired (5.4.7)', async () => {
  const sent = Date.now()
  await send('erin@ours.example', ['wait@later.example'], 'too slow')
  const [dsn] = await waitForCount(() => mbox('erin'), 1, 60_000)
  const waited = Date.now() - sent
  assert.ok(waited >= 10_000, `not before MAX_QUEUE_LIFETIME (after ${waited} ms)`)
  assert.match(dsn, /^Subject: Undelivered Mail Returned to Sender$/m)
  assert.match(dsn, /^Final-Recipient: rfc822; wait@later\.example$/m)
  assert.match(dsn, /^Action: failed$/m)
  assert.match(dsn, /^Status: 5\.4\.7$/m)
  assert.match(dsn, /^Diagnostic-Code: smtp; 451 4\.7\.1 Try again later.*gave up: message too old/m)
  assert.match(dsn, /^Remote-MTA: dns; 127\.0\.0\.1$/m, 'the last host that answered')
  assert.match(dsn, /^Subject: too slow$/m, 'the message comes back')
  assert.equal(await queued('wait@later.example'), undefined)
  assert.equal(later.messages.length, 0)
  assert.ok(later.refused.filter((x) => x.to === 'wait@later.example').length >= 2, 'retried before giving up')
})
