// The MX's DNS checks on the running appliance: blocklists (SMTP_DNSBL, RFC 5782) and senders'
// domains (UNKNOWN_SENDER_DOMAIN). A real dnsmasq serves the lists and the domains, swaks connects
// from the loopback address each case needs.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { startAppliance, type Appliance } from './support/appliance.js'
import { swaksMail, lastReply } from './support/swaks.js'
import { readMbox, waitForCount } from './support/mbox.js'
import { startDns, type Dns } from './support/dnsmasq.js'
import { httpGet } from './support/supervisor.js'

// Clients by their last octet: 12 listed, 13 not, 14 listed with an answer the filter excludes,
// 15 answered "query refused" (Spamhaus's 127.255.255.254), 16 answered outside 127/8 (a
// resolver rewriting NXDOMAIN), 17 listed but in TRUSTED_NETWORKS, 19 listed by both lists, 20
// listed but in SHARED_CLIENT_ADDRESSES (a proxy's address, not a client's).
let dns: Dns
let mx: Appliance
let port: number

before(async () => {
  dns = await startDns({
    log: true,
    mx: [{ domain: 'remote.example', host: 'mail.remote.example' }],
    a: [
      { name: '12.0.0.127.bl.example', ip: '127.0.0.2' },
      { name: '14.0.0.127.picky.example', ip: '127.0.0.20' },
      { name: '19.0.0.127.picky.example', ip: '127.0.0.3' },
      { name: '19.0.0.127.bl.example', ip: '127.0.0.2' },
      { name: '15.0.0.127.bl.example', ip: '127.255.255.254' },
      { name: '16.0.0.127.bl.example', ip: '192.0.2.1' },
      { name: '17.0.0.127.bl.example', ip: '127.0.0.2' },
      { name: '20.0.0.127.bl.example', ip: '127.0.0.2' },
      // Weighted lists (the second appliance below): 30 by the light one, 31 by the heavy one,
      // 32 by the heavy one and the allowlist, 33 by the light one and the heavy one.
      { name: '30.0.0.127.light.example', ip: '127.0.0.2' },
      { name: '31.0.0.127.heavy.example', ip: '127.0.0.2' },
      { name: '32.0.0.127.heavy.example', ip: '127.0.0.2' },
      { name: '32.0.0.127.allow.example', ip: '127.0.10.3' },
      { name: '33.0.0.127.light.example', ip: '127.0.0.2' },
      { name: '33.0.0.127.heavy.example', ip: '127.0.0.2' },
      { name: 'mail.named.example', ip: '127.0.0.40' },
      { name: 'dyn.isp.example', ip: '192.0.2.41' },
    ],
    txt: [{ name: '12.0.0.127.bl.example', text: 'Listed: see https://bl.example/127.0.0.12' }],
    // SMTP_CLIENT_PTR_CHECK (the third appliance below): 40 named and confirmed, 41 named by a PTR
    // whose name gives another address, 42 without a PTR.
    ptr: [
      { ip: '127.0.0.40', name: 'mail.named.example' },
      { ip: '127.0.0.41', name: 'dyn.isp.example' },
    ],
  })
  mx = await startAppliance({
    users: { 'bob@ours.example': 'pw-bob' },
    aliases: 'abuse@ours.example: bob@ours.example',
    env: {
      DNS_SERVERS: dns.server,
      // bl.example lists anything in 127/8; picky.example only 127.0.0.2 to .11, as Postfix writes it.
      SMTP_DNSBL: 'picky.example=127.0.0.[2..11], bl.example',
      TRUSTED_NETWORKS: '127.0.0.17/32',
      SHARED_CLIENT_ADDRESSES: '127.0.0.20',
      UNKNOWN_SENDER_DOMAIN: 'defer',
    },
  })
  port = mx.port('smtp-ingress', 'smtp')
})
after(async () => {
  await mx?.stop()
  await dns?.close()
})

const BOB = (): string => path.join(mx.mailDir, 'bob')
const send = (from: string, to: string, sender = 'a@remote.example') => swaksMail(port, { client: from, sender, to })

test('refuses a listed client at RCPT with 554 5.7.1 naming the list and its reason, as Postfix does', async () => {
  const out = await send('127.0.0.12', 'bob@ours.example')
  assert.equal(
    lastReply(out, 'RCPT'),
    '554 5.7.1 Service unavailable; Client host [127.0.0.12] blocked using bl.example; Listed: see https://bl.example/127.0.0.12',
  )
  assert.match(mx.output(), / refused .*remoteIp=127\.0\.0\.12 .*code=554 .*blocked using bl\.example/)
  // Listed by both: the first list in SMTP_DNSBL's order is named.
  const both = await send('127.0.0.19', 'bob@ours.example')
  assert.equal(lastReply(both, 'RCPT'), '554 5.7.1 Service unavailable; Client host [127.0.0.19] blocked using picky.example')
})

test('postmaster and abuse still take mail from a listed client (RFC 5321 §4.5.1, RFC 2142)', async () => {
  for (const to of ['postmaster@ours.example', 'abuse@ours.example']) {
    const out = await send('127.0.0.12', to)
    assert.match(lastReply(out, '.') ?? '', /^250 /, `${to}: ${out.stdout}`)
  }
})

test('accepts a client no list names, and one whose only answer the zone filter excludes', async () => {
  for (const from of ['127.0.0.13', '127.0.0.14']) {
    const before = await readMbox(BOB())
    const out = await send(from, 'bob@ours.example')
    assert.match(lastReply(out, '.') ?? '', /^250 /, `${from}: ${out.stdout}`)
    await waitForCount(() => readMbox(BOB()), before.length + 1)
  }
})

test("is not fooled by a list's refusal code or a rewritten NXDOMAIN, and says so for the refusal", async () => {
  for (const from of ['127.0.0.15', '127.0.0.16']) {
    const out = await send(from, 'bob@ours.example')
    assert.match(lastReply(out, '.') ?? '', /^250 /, `${from}: ${out.stdout}`)
  }
  await mx.waitForLog(/dnsbl refused our query: nobody is listed by it .*zone=bl\.example/)
  // The ingress's health says so too, naming the list and the answer, until an hour without one.
  const health = JSON.parse((await httpGet(mx.port('smtp-ingress', 'health'), '/healthz')).body) as {
    status: string
    checks: Record<string, { status: string; detail?: string }>
  }
  assert.equal(health.status, 'degraded')
  assert.deepEqual(health.checks.dnsbl, {
    status: 'degraded',
    detail: 'SMTP_DNSBL: bl.example (127.255.255.254) refused our queries, nobody is listed by it (a public resolver? see DNS_SERVERS)',
  })
})

test('weighted lists, as postscreen scores them: refused at SMTP_DNSBL_THRESHOLD, an allowlist offsets a listing', async (t) => {
  const weighted = await startAppliance({
    users: { 'bob@ours.example': 'pw-bob' },
    env: {
      DNS_SERVERS: dns.server,
      SMTP_DNSBL: 'light.example*1, heavy.example=127.0.0.2*3, allow.example=127.0.[0..255].[1..3]*-5',
      SMTP_DNSBL_THRESHOLD: '3',
    },
  })
  t.after(() => weighted.stop())
  const sendTo = (from: string) =>
    swaksMail(weighted.port('smtp-ingress', 'smtp'), { client: from, sender: 'a@remote.example', to: 'bob@ours.example' })
  // 1 and -2 are under 3; 3 and 4 are not, and the reply names the first list that listed it.
  for (const from of ['127.0.0.30', '127.0.0.32']) assert.match(lastReply(await sendTo(from), '.') ?? '', /^250 /, from)
  assert.equal(
    lastReply(await sendTo('127.0.0.31'), 'RCPT'),
    '554 5.7.1 Service unavailable; Client host [127.0.0.31] blocked using heavy.example',
  )
  assert.equal(
    lastReply(await sendTo('127.0.0.33'), 'RCPT'),
    '554 5.7.1 Service unavailable; Client host [127.0.0.33] blocked using light.example',
  )
})

test("SMTP_CLIENT_PTR_CHECK: reverse wants a PTR, forward one that gives the address back (450 4.7.25, as Postfix's reject_unknown_(reverse_)client_hostname); postmaster still reachable", async (t) => {
  const modes = ['reverse', 'forward'] as const
  const apps = await Promise.all(
    modes.map((mode) =>
      startAppliance({ users: { 'bob@ours.example': 'pw-bob' }, env: { DNS_SERVERS: dns.server, SMTP_CLIENT_PTR_CHECK: mode } }),
    ),
  )
  t.after(() => Promise.all(apps.map((a) => a.stop())))
  const outcomes: Record<string, string[]> = {}
  for (const [i, mode] of modes.entries())
    for (const from of ['127.0.0.40', '127.0.0.41', '127.0.0.42']) {
      const out = await swaksMail(apps[i].port('smtp-ingress', 'smtp'), {
        client: from,
        sender: 'a@remote.example',
        to: 'bob@ours.example',
      })
      ;(outcomes[mode] ??= []).push(lastReply(out, '.') ?? lastReply(out, 'RCPT') ?? out.stdout)
    }
  assert.match(outcomes.reverse[0], /^250 /)
  assert.match(outcomes.reverse[1], /^250 /)
  assert.equal(outcomes.reverse[2], '450 4.7.25 Client host rejected: cannot find your reverse hostname, [127.0.0.42]')
  assert.match(outcomes.forward[0], /^250 /)
  assert.equal(outcomes.forward[1], '450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.41]')
  assert.equal(outcomes.forward[2], '450 4.7.25 Client host rejected: cannot find your reverse hostname, [127.0.0.42]')
  const postmaster = await swaksMail(apps[1].port('smtp-ingress', 'smtp'), {
    client: '127.0.0.42',
    sender: 'a@remote.example',
    to: 'postmaster@ours.example',
  })
  assert.match(lastReply(postmaster, '.') ?? '', /^250 /, postmaster.stdout)
})

test('does not look up TRUSTED_NETWORKS clients, nor SHARED_CLIENT_ADDRESSES', async () => {
  for (const from of ['127.0.0.17', '127.0.0.20']) assert.match(lastReply(await send(from, 'bob@ours.example'), '.') ?? '', /^250 /)
  assert.match(dns.output(), /query\[A\] 12\.0\.0\.127\.bl\.example/)
  assert.doesNotMatch(dns.output(), /(17|20)\.0\.0\.127\.bl\.example/)
})

test("defers MAIL FROM a domain that does not exist (450 4.1.8, Postfix's default), not from TRUSTED_NETWORKS", async () => {
  const out = await send('127.0.0.13', 'bob@ours.example', 'a@nowhere.example')
  assert.equal(lastReply(out, 'MAIL'), '450 4.1.8 Sender address rejected: Domain nowhere.example not found')
  assert.match(lastReply(await send('127.0.0.17', 'bob@ours.example', 'a@nowhere.example'), '.') ?? '', /^250 /)
})

test('accepts mail while the lists do not answer (a list that cannot be asked lists nobody)', async () => {
  await dns.pause()
  try {
    // From one of our own domains, whose sender is not looked up (a remote one would get 451 4.4.3).
    const out = await send('127.0.0.18', 'bob@ours.example', 'alice@ours.example')
    assert.match(lastReply(out, '.') ?? '', /^250 /, out.stdout)
  } finally {
    await dns.resume()
  }
})
