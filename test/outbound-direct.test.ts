// Direct delivery against real parts: dnsmasq answers the MX and A records of the test domains
// (every address in 127.0.0.0/8), Postfix's smtp-sink and the scripted MX play the remote hosts,
// all reached on one OUTBOUND_PORT through loopback forwarders. Messages enter through the MX
// from a TRUSTED_NETWORKS client, or straight into the spool.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { openSpool, type Spool, type QueueEntry } from '@facteur/spool'
import { sendPlain, queuedFor, waitFor } from './support/queue.js'
import { startAppliance, ROOT, type Appliance } from './support/appliance.js'
import { startDns, type Dns } from './support/dnsmasq.js'
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.js'
import { startScriptedMx, type ScriptedMx } from './support/scripted-mx.js'
import { startForwarder, type Forwarder } from './support/forwarder.js'
import { freePort } from './support/ports.js'

import { readMbox, waitForCount } from './support/mbox.js'
import { run } from './support/process.js'

let a: Appliance
let dns: Dns
let spool: Spool
let good: SmtpSink
let soft: SmtpSink
let silent: SmtpSink
let mixed: ScriptedMx
const fwd: Record<string, Forwarder> = {}

before(async () => {
  good = await startSmtpSink()
  soft = await startSmtpSink({ softReject: ['RCPT'], softReply: '451 4.7.1 Try again later' })
  silent = await startSmtpSink({ noGreeting: true })
  mixed = await startScriptedMx({ rcpt: { 'gone@mixed.example': '550 5.1.1 No such user' } })
  const port = await freePort('127.0.0.2')
  fwd.ok = await startForwarder('127.0.0.2', port, good.port)
  fwd.mixed = await startForwarder('127.0.0.3', port, mixed.port)
  fwd.later = await startForwarder('127.0.0.4', port, soft.port)
  fwd.silent = await startForwarder('127.0.0.5', port, silent.port)
  fwd.parked = await startForwarder('127.0.0.6', port, soft.port)
  fwd.deaf = await startForwarder('127.0.0.7', port, silent.port)
  dns = await startDns({
    mx: [
      { domain: 'ok.example', host: 'mx.ok.example' },
      { domain: 'mixed.example', host: 'mx.mixed.example' },
      { domain: 'later.example', host: 'mx.later.example' },
      { domain: 'silent.example', host: 'mx.silent.example' },
      { domain: 'parked.example', host: 'mx.parked.example' },
      { domain: 'twomx.example', host: 'mx1.twomx.example', pref: 10 },
      { domain: 'twomx.example', host: 'mx2.twomx.example', pref: 20 },
      { domain: 'loop.example', host: 'mx.ours.example', pref: 10 },
    ],
    a: [
      { name: 'mx.ok.example', ip: '127.0.0.2' },
      { name: 'implicit.example', ip: '127.0.0.2' },
      { name: 'mx.mixed.example', ip: '127.0.0.3' },
      { name: 'mx.later.example', ip: '127.0.0.4' },
      { name: 'mx.silent.example', ip: '127.0.0.5' },
      { name: 'mx.parked.example', ip: '127.0.0.6' },
      { name: 'mx1.twomx.example', ip: '127.0.0.7' },
      { name: 'mx2.twomx.example', ip: '127.0.0.2' },
      { name: 'mx.ours.example', ip: '127.0.0.1' },
    ],
    // RFC 7505: one MX of preference 0 naming the root.
    extraArgs: ['--mx-host=null.example,.,0'],
  })
  const users = Object.fromEntries(
    ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina', 'hank'].map((u) => [`${u}@ours.example`, `pw-${u}`]),
  )
  a = await startAppliance({
    users,
    env: {
      DNS_SERVERS: dns.server,
      OUTBOUND_PORT: String(port),
      TRUSTED_NETWORKS: '127.0.0.1',
      QUEUE_RETRY_MIN: '1s',
      QUEUE_RETRY_MAX: '2s',
      OUTBOUND_GREETING_TIMEOUT: '1s',
      DELAY_WARNING: '3s',
    },
  })
  spool = await openSpool(a.spoolDir)
})

after(async () => {
  await a?.stop()
  for (const f of Object.values(fwd)) await f.close()
  for (const s of [good, soft, silent, mixed]) await s?.close()
  await dns?.close()
})

const mbox = (user: string): Promise<string[]> => readMbox(path.join(a.mailDir, user))

/** Sink messages whose recipients include `rcpt`. */
async function sinkFor(sink: SmtpSink, rcpt: string, count = 1, timeoutMs = 15_000) {
  return waitForCount(async () => (await sink.received()).filter((m) => m.rcptArgs.some((x) => x.includes(`<${rcpt}>`))), count, timeoutMs)
}

const send = (from: string, to: string[], subject: string): Promise<void> => sendPlain(a.port('smtp-ingress', 'smtp'), from, to, subject)
const queued = (rcpt: string): Promise<QueueEntry | undefined> => queuedFor(spool, rcpt)
const until = <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> =>
  waitFor(what, probe, { timeoutMs, context: () => a.output().slice(-3000) })

test('delivers to the MX of the recipient domain, greeting with EHLO MAIL_HOSTNAME', async () => {
  await send('alice@ours.example', ['rcpt@ok.example'], 'direct one')
  const [m] = await sinkFor(good, 'rcpt@ok.example')
  assert.equal(m.helo, 'mx.ours.example')
  assert.equal(m.mailArgs.split(' ')[0], '<alice@ours.example>')
  assert.match(m.message, /^Received: from client\.test \(\[127\.0\.0\.1\]\)\n\tby mx\.ours\.example \(Facteur\)/m)
  assert.match(m.message, /^Subject: direct one$/m)
})

test('with no MX record, delivers to the address of the domain itself (RFC 5321 §5.1)', async () => {
  await send('alice@ours.example', ['someone@implicit.example'], 'implicit mx')
  await sinkFor(good, 'someone@implicit.example')
})

test('a 5xx for one of two recipients bounces only that one: the DSN reaches the sender, the other is delivered once', async () => {
  await send('bob@ours.example', ['ok@mixed.example', 'gone@mixed.example'], 'half bounced')
  const [dsn] = await waitForCount(() => mbox('bob'), 1)
  assert.match(dsn, /^From: Mail Delivery System <MAILER-DAEMON@mx\.ours\.example>$/m)
  assert.match(dsn, /^Return-Path: <>$/m)
  assert.match(dsn, /^Content-Type: multipart\/report; report-type=delivery-status;/m)
  assert.match(dsn, /^Reporting-MTA: dns; mx\.ours\.example$/m)
  assert.match(dsn, /^Arrival-Date: /m)
  assert.match(dsn, /^Final-Recipient: rfc822; gone@mixed\.example$/m)
  assert.match(dsn, /^Action: failed$/m)
  assert.match(dsn, /^Status: 5\.1\.1$/m)
  assert.match(dsn, /^Remote-MTA: dns; mx\.mixed\.example$/m)
  assert.match(dsn, /^Diagnostic-Code: smtp; 550 5\.1\.1 No such user$/m)
  assert.doesNotMatch(dsn, /Final-Recipient: rfc822; ok@mixed\.example/)
  assert.match(dsn, /^Content-Type: message\/rfc822$/m, 'the message comes back whole')
  assert.match(dsn, /^Subject: half bounced$/m)
  await new Promise((r) => setTimeout(r, 1500))
  const got = mixed.messages.filter((m) => m.to.includes('ok@mixed.example'))
  assert.equal(got.length, 1)
  assert.deepEqual(got[0].to, ['ok@mixed.example'])
  assert.equal(await queued('gone@mixed.example'), undefined)
  assert.equal((await mbox('bob')).length, 1, 'one DSN')
})

test('a 4xx is retried with backoff, and the message is delivered once the host accepts', async () => {
  await send('alice@ours.example', ['wait@later.example'], 'later')
  const entry = await until('a deferral', async () => {
    const e = await queued('wait@later.example')
    return e?.envelope.recipients[0].status === 'deferred' && e
  })
  assert.match(entry.envelope.recipients[0].lastError ?? '', /^451 4\.7\.1 Try again later/)
  fwd.later.setTarget(good.port)
  await sinkFor(good, 'wait@later.example')
  await until('the message to leave the queue', async () => !(await queued('wait@later.example')))
})

test('an MX that never greets times out without stalling the queue, and the message is retried', async () => {
  await send('alice@ours.example', ['hush@silent.example'], 'silent')
  await send('alice@ours.example', ['meanwhile@ok.example'], 'meanwhile')
  await sinkFor(good, 'meanwhile@ok.example', 1, 5000)
  const entry = await until('a greeting timeout', async () => {
    const e = await queued('hush@silent.example')
    return e?.envelope.recipients[0].status === 'deferred' && e
  })
  assert.match(entry.envelope.recipients[0].lastError ?? '', /^451 4\.4\.2 mx\.silent\.example\[127\.0\.0\.5\]/)
  fwd.silent.setTarget(good.port)
  await sinkFor(good, 'hush@silent.example')
})

test('when the best MX does not greet, the next one gets the message in the same attempt', async () => {
  await send('alice@ours.example', ['two@twomx.example'], 'second mx')
  await sinkFor(good, 'two@twomx.example', 1, 10_000)
  assert.ok(fwd.deaf.connections >= 1, 'the best MX was tried first')
})

test('a null MX (RFC 7505) bounces at once with 5.1.10', async () => {
  await send('carol@ours.example', ['nobody@null.example'], 'to null')
  const [dsn] = await waitForCount(() => mbox('carol'), 1)
  assert.match(dsn, /^Final-Recipient: rfc822; nobody@null\.example$/m)
  assert.match(dsn, /^Status: 5\.1\.10$/m)
  assert.equal(await queued('nobody@null.example'), undefined)
})

test('an MX that is this host (MAIL_HOSTNAME) is a loop: bounced with 5.4.6', async () => {
  await send('dave@ours.example', ['x@loop.example'], 'loop')
  const [dsn] = await waitForCount(() => mbox('dave'), 1)
  assert.match(dsn, /^Status: 5\.4\.6$/m)
  assert.match(dsn, /loops back to myself/)
})

test('sends one delay warning (RFC 3464 delayed) once a message has waited DELAY_WARNING, and keeps retrying', async () => {
  await send('erin@ours.example', ['stuck@parked.example'], 'slow one')
  const [warning] = await waitForCount(() => mbox('erin'), 1, 15_000)
  assert.match(warning, /^Subject: Delayed Mail \(still being retried\)$/m)
  assert.match(warning, /^Action: delayed$/m)
  assert.match(warning, /^Status: 4\.7\.1$/m)
  assert.match(warning, /^Will-Retry-Until: /m)
  assert.match(warning, /^Content-Type: text\/rfc822-headers$/m)
  await new Promise((r) => setTimeout(r, 3000))
  assert.equal((await mbox('erin')).length, 1, 'one warning only')
  const e = await queued('stuck@parked.example')
  assert.ok(e && e.envelope.warnedAt, 'still queued, warnedAt recorded')
  assert.ok(e.envelope.recipients[0].attempts >= 2)
  assert.ok(await spool.remove(e.id))
})

test('honours NOTIFY, RET and ENVID from the envelope: NEVER is silent, SUCCESS reports, HDRS returns the header', async () => {
  const base = { receivedAt: Date.now(), nextAttempt: 0, client: { ip: '127.0.0.1', helo: 'test', tls: false }, source: 'submission' }
  const msg = (s: string) => Buffer.from(`From: <frank@ours.example>\r\nSubject: ${s}\r\n\r\nbody\r\n`)
  await spool.enqueue(msg('never'), {
    ...base,
    sender: 'frank@ours.example',
    recipients: [{ address: 'gone@mixed.example', original: 'gone@mixed.example', status: 'pending', attempts: 0, notify: ['NEVER'] }],
  })
  await spool.enqueue(msg('success'), {
    ...base,
    sender: 'frank@ours.example',
    recipients: [{ address: 'gina@ours.example', original: 'info@ours.example', status: 'pending', attempts: 0, notify: ['SUCCESS'] }],
  })
  await spool.enqueue(msg('headers only'), {
    ...base,
    sender: 'hank@ours.example',
    dsn: { ret: 'HDRS', envid: 'ENV-42' },
    recipients: [{ address: 'gone@mixed.example', original: 'gone@mixed.example', status: 'pending', attempts: 0, notify: ['FAILURE'] }],
  })
  const [success] = await waitForCount(() => mbox('frank'), 1)
  assert.match(success, /^Subject: Successful Mail Delivery Report$/m)
  assert.match(success, /^Action: delivered$/m)
  assert.match(success, /^Original-Recipient: rfc822; info@ours\.example$/m)
  const [failure] = await waitForCount(() => mbox('hank'), 1)
  assert.match(failure, /^Original-Envelope-Id: ENV-42$/m)
  assert.match(failure, /^Content-Type: text\/rfc822-headers$/m)
  assert.doesNotMatch(failure, /^body$/m)
  await new Promise((r) => setTimeout(r, 1500))
  assert.equal((await mbox('frank')).length, 1, 'NOTIFY=NEVER: no bounce for the other message')
})

test('mailctl queue hold, release and delete act on a waiting message', async () => {
  await send('alice@ours.example', ['parked@parked.example'], 'to be held')
  const entry = await until('the message in the queue', () => queued('parked@parked.example'))
  const mailctl = (...args: string[]) =>
    run(process.execPath, ['--import', 'tsx', '--conditions=source', path.join(ROOT, 'packages/mailctl/src/main.ts'), ...args], {
      env: a.env,
      cwd: ROOT,
    })
  const held = await mailctl('queue', 'hold', entry.id)
  assert.equal(held.code, 0, held.stderr)
  assert.equal((await queued('parked@parked.example'))?.state, 'hold')
  const attempts = (await queued('parked@parked.example'))!.envelope.recipients[0].attempts
  await new Promise((r) => setTimeout(r, 2500))
  assert.equal((await queued('parked@parked.example'))!.envelope.recipients[0].attempts, attempts, 'a held message is not tried')
  const released = await mailctl('queue', 'release', entry.id)
  assert.equal(released.code, 0, released.stderr)
  await until('the release', async () => (await queued('parked@parked.example'))?.state !== 'hold')
  const shown = await mailctl('queue', 'show', entry.id)
  assert.equal(shown.code, 0, shown.stderr)
  assert.match(shown.stdout, new RegExp(`^\\*\\*\\* ENVELOPE: ${entry.id} queue, received `))
  assert.match(shown.stdout, /^sender: <alice@ours\.example>$/m)
  assert.match(shown.stdout, /^recipient: <parked@parked\.example> deferred/m)
  assert.match(shown.stdout, /^Received: from /m, 'the fields added on the way')
  assert.match(shown.stdout, /^Subject: to be held$/m)
  const deleted = await mailctl('queue', 'delete', entry.id)
  assert.equal(deleted.code, 0, deleted.stderr)
  assert.match(deleted.stdout, new RegExp(`deleted ${entry.id}`))
  assert.equal(await queued('parked@parked.example'), undefined)
  const again = await mailctl('queue', 'delete', entry.id)
  assert.equal(again.code, 1)
  assert.equal((await mailctl('queue', 'show', entry.id)).code, 1)

  // A compromised account's backlog: every message from that sender, and only those.
  await send('spammer@ours.example', ['parked@parked.example'], 'spam 1')
  await send('spammer@ours.example', ['parked@parked.example'], 'spam 2')
  await send('alice@ours.example', ['parked@parked.example'], 'kept')
  const fromSpammer = async () => (await spool.list()).filter((e) => e.envelope.sender === 'spammer@ours.example').length
  await until('the backlog', async () => ((await fromSpammer()) === 2 && (await queued('parked@parked.example')) ? true : undefined))
  const purged = await mailctl('queue', 'delete', '--from=Spammer@ours.example')
  assert.equal(purged.code, 0, purged.stderr)
  assert.equal(purged.stdout.split('\n').filter((l) => l.startsWith('deleted ')).length, 2)
  assert.equal(await fromSpammer(), 0)
  assert.ok(await queued('parked@parked.example'), "alice's message stays")
  assert.equal((await mailctl('queue', 'delete', '--from=nobody@ours.example')).stdout, 'no message matched\n')
  assert.notEqual((await mailctl('queue', 'delete')).code, 0, 'no id, no ALL, no --from: a usage error')
  // ALL: a notice that leaves the spool on its own meanwhile is reported missing, not an error here.
  await mailctl('queue', 'delete', 'ALL')
  assert.equal(await queued('parked@parked.example'), undefined)
})
