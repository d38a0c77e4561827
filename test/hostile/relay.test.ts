// Open relay: several dozen classic relay addresses, from the null sender, a foreign sender and a
// local-looking one, unauthenticated, on :25 and on every submission listener (587 with STARTTLS
// and no AUTH, 465, the alternate port). None gets a 2xx RCPT and the spool ends with no message for
// a remote recipient; the null sender still reaches a local user; only TRUSTED_NETWORKS relays.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { startAppliance, type Appliance } from '../support/appliance.js'
import { readMbox, waitForCount } from '../support/mbox.js'
import { Wire, type Mode } from './wire.js'
import { record, sampleMemory, spoolEnvelopes, totalRestarts, waitForListeners } from './figures.js'

const LOCAL = ['ours.example', 'second.example']

/** Each address names (or smuggles) a destination outside LOCAL_DOMAINS. */
export const RELAY_PATTERNS = [
  // plain foreign domains and case variants
  'user@other.example',
  'USER@OTHER.EXAMPLE',
  'User@Other.Example',
  'postmaster@other.example',
  'alice@other.example',
  // percent hack (sendmail's %-routing)
  'user%other.example@ours.example',
  'user%other.example@OURS.EXAMPLE',
  'alice%other.example@ours.example',
  'user%other.example%ours.example@ours.example',
  'user%other.example',
  'user%[10.0.0.1]@ours.example',
  // quoted local parts
  '"user@other.example"@ours.example',
  '"user%other.example"@ours.example',
  '"user@other.example"',
  '"other.example!user"@ours.example',
  '"user@other.example@"@ours.example',
  '"user"@other.example',
  '"@other.example:user"@ours.example',
  '"alice@ours.example"@other.example',
  // source routes (RFC 5321 §4.1.2 A-d-l; §C: to be ignored, never followed)
  '@ours.example:user@other.example',
  '@OURS.EXAMPLE:user@other.example',
  '@ours.example,@other.example:user@other.example',
  '@other.example:alice@ours.example:user@other.example',
  '@[127.0.0.1]:user@other.example',
  // UUCP bang paths
  'other.example!user@ours.example',
  'other.example!user',
  'ours.example!other.example!user@ours.example',
  'other.example!user%ours.example@ours.example',
  // IP literals
  'user@[127.0.0.1]',
  'alice@[127.0.0.1]',
  'user@[10.0.0.1]',
  'user@[IPv6:::1]',
  'user@[IPv6:0:0:0:0:0:ffff:127.0.0.1]',
  'user@127.0.0.1',
  'user@[ours.example]',
  // double @ and escapes
  'user@other.example@ours.example',
  'user@ours.example@other.example',
  'user\\@other.example@ours.example',
  'user@other.example\\@ours.example',
  // trailing and doubled dots, look-alike domains
  'user@other.example.',
  'user@other.example..',
  'user@ours.example.other.example',
  'user@xours.example',
  'user@ours.example.',
  'user@ours.example.evil.example',
  'user@.other.example',
  'user@other..example',
  // separators and comments a lax parser might split on
  'user@other.example,alice@ours.example',
  'user@other.example (comment)',
  'user@other.example>alice@ours.example',
  'user@other.example;alice@ours.example',
  'user@other.example\tx',
] as const

const SENDERS = ['', 'sender@remote.example', 'alice@ours.example'] as const

let app: Appliance
const listeners: { name: string; port: () => number; mode: Mode }[] = [
  { name: ':25 smtp-ingress', port: () => app.port('smtp-ingress', 'smtp'), mode: 'plain' },
  { name: ':587 submission (STARTTLS, no AUTH)', port: () => app.port('submission', 'submission'), mode: 'starttls' },
  { name: ':465 submissions', port: () => app.port('submission', 'submissions'), mode: 'implicit' },
  { name: 'SUBMISSION_ALT_PORT', port: () => app.port('submission', 'alt'), mode: 'implicit' },
]

before(async () => {
  app = await startAppliance({
    timeoutMs: 90_000,
    services: ['smtp-ingress', 'delivery', 'submission'],
    users: { 'alice@ours.example': 'pw-alice', 'bob@ours.example': 'pw-bob', 'carol@second.example': 'pw-carol' },
    env: { LOCAL_DOMAINS: LOCAL.join(','), SUBMISSION_ALT_PORT: '0', TRUSTED_NETWORKS: '127.0.0.2', SMTP_MAX_CLIENTS: '500' },
  })
  await waitForListeners(app, 'submission', ['submission', 'submissions', 'alt'])
})
after(() => app.stop())

const isLocal = (address: string): boolean => {
  const at = address.lastIndexOf('@')
  const local = address.slice(0, at)
  return at > 0 && LOCAL.includes(address.slice(at + 1).toLowerCase()) && !/[%!@"\\:]/.test(local)
}

/** One unauthenticated transaction: the relay address, then a local user, then DATA if anything was accepted. */
async function attempt(port: number, mode: Mode, from: string, rcpt: string): Promise<{ rcpt: string; data?: string }> {
  const w = await Wire.open(port, { mode })
  try {
    await w.trySend('EHLO client.example')
    await w.trySend(`MAIL FROM:<${from}>`)
    const reply = await w.trySend(`RCPT TO:<${rcpt}>`)
    const local = await w.trySend('RCPT TO:<bob@ours.example>')
    let data: string | undefined
    if (/^2/.test(reply) || /^2/.test(local)) {
      if ((await w.trySend('DATA')).startsWith('354')) data = await w.trySend(`Subject: relay probe\r\nX-Probe: ${rcpt}\r\n\r\nprobe\r\n.`)
    }
    await w.trySend('QUIT')
    return { rcpt: reply, data }
  } finally {
    w.close()
  }
}

test('no relay pattern gets a 2xx RCPT from any sender on :25, 587 (STARTTLS, no AUTH), 465 or the alternate port', async () => {
  const started = Date.now()
  const mem = sampleMemory(app)
  const relayed: string[] = []
  let probes = 0
  let accepted = 0
  for (const l of listeners) {
    const jobs = SENDERS.flatMap((from) => RELAY_PATTERNS.map((rcpt) => ({ from, rcpt })))
    // Eight at a time: the submission listeners take a TLS handshake per probe.
    for (let i = 0; i < jobs.length; i += 8) {
      const results = await Promise.all(
        jobs.slice(i, i + 8).map(async (j) => ({ ...j, ...(await attempt(l.port(), l.mode, j.from, j.rcpt)) })),
      )
      for (const r of results) {
        probes++
        if (r.data?.startsWith('250')) accepted++
        if (/^2/.test(r.rcpt)) relayed.push(`${l.name} <${r.from}> -> <${r.rcpt}>: ${r.rcpt}`)
        assert.doesNotMatch(r.rcpt, /^closed: no reply/, `${l.name} <${r.from}> ${r.rcpt}: the server must answer`)
      }
    }
  }
  // Delivery takes the local copies; whatever stays queued must be for local users only.
  await new Promise((r) => setTimeout(r, 2000))
  const envelopes = await spoolEnvelopes(app.spoolDir)
  const remote = envelopes.flatMap((e) => e.recipients.filter((r) => !isLocal(r.address)).map((r) => `${e.id}: ${r.address}`))
  const restarts = await totalRestarts(app)
  await mem.stop()
  record({
    test: 'open relay (relay.test.ts)',
    load: `${RELAY_PATTERNS.length} patterns × ${SENDERS.length} senders × ${listeners.length} listeners = ${probes} unauthenticated transactions`,
    injected:
      'percent hack, quoted local parts, source routes, bang paths, IP literals, double @, trailing dots, case variants, separators',
    sent: probes,
    accepted,
    lost: 0,
    restarts,
    peakRssMiB: mem.max(),
    result: `${relayed.length} relay RCPT answered 2xx; ${remote.length} spooled remote recipient(s); ${accepted} probe messages accepted (for the local bob only)`,
    durationS: Math.round((Date.now() - started) / 1000),
  })
  assert.deepEqual(relayed, [])
  assert.deepEqual(remote, [])
  assert.equal(restarts, 0)
})

test('the null sender reaches a local user on :25 (bounces must arrive)', async () => {
  const w = await Wire.open(app.port('smtp-ingress', 'smtp'))
  await w.send('EHLO client.example')
  assert.match(await w.send('MAIL FROM:<>'), /^250 /)
  assert.match(await w.send('RCPT TO:<alice@ours.example>'), /^250 /)
  assert.match(await w.send('DATA'), /^354 /)
  assert.match(await w.send('Subject: null sender bounce\r\n\r\nreturned\r\n.'), /^250 2\.0\.0 /)
  w.close()
  const msgs = await waitForCount(
    async () => (await readMbox(path.join(app.mailDir, 'ours.example', 'alice'))).filter((m) => m.includes('null sender bounce')),
    1,
  )
  assert.match(msgs[0], /^Return-Path: <>/)
})

test('with TRUSTED_NETWORKS=127.0.0.2 only that client relays on :25', async () => {
  const port = app.port('smtp-ingress', 'smtp')
  const rcptFrom = async (localAddress: string, rcpt: string): Promise<string> => {
    const w = await Wire.open(port, { localAddress })
    try {
      await w.send('EHLO lan.example')
      await w.send('MAIL FROM:<printer@lan.example>')
      return await w.send(`RCPT TO:<${rcpt}>`)
    } finally {
      w.close()
    }
  }
  assert.match(await rcptFrom('127.0.0.2', 'user@other.example'), /^250 /)
  for (const addr of ['127.0.0.1', '127.0.0.3', '127.0.1.2'])
    assert.match(await rcptFrom(addr, 'user@other.example'), /^5\d\d 5\.7\.1 /, addr)
  // The trusted client's relay goes through whole: its message waits in the queue for the remote MX.
  const w = await Wire.open(port, { localAddress: '127.0.0.2' })
  await w.send('EHLO lan.example')
  await w.send('MAIL FROM:<printer@lan.example>')
  assert.match(await w.send('RCPT TO:<user@other.example>'), /^250 /)
  await w.send('DATA')
  const reply = await w.send('Subject: trusted relay\r\n\r\nx\r\n.')
  w.close()
  const id = /queued as (\w+)/.exec(reply)?.[1]
  assert.ok(id, reply)
  // (delivery may already have tried it: the ingress's log line says what was queued; log lines
  // reach stdout a turn of the event loop after the reply)
  await app.waitForLog(new RegExp(`queued [^\\n]*queueId=${id} [^\\n]*recipients=\\["user@other\\.example"\\]`))
  // Submission ports ignore TRUSTED_NETWORKS: without AUTH nothing is accepted there, even from 127.0.0.2.
  const s = await Wire.open(app.port('submission', 'submissions'), { mode: 'implicit', localAddress: '127.0.0.2' })
  await s.send('EHLO lan.example')
  assert.match(await s.send('MAIL FROM:<printer@lan.example>'), /^530 5\.7\.0 /)
  assert.doesNotMatch(await s.trySend('RCPT TO:<user@other.example>'), /^2/)
  s.close()
})
