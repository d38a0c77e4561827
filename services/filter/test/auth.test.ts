import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import dgram from 'node:dgram'
import { promises as dnsPromises } from 'node:dns'
import { authenticate } from 'mailauth'
import { dkimSign } from 'mailauth/lib/dkim/sign.js'
import { sealMessage } from 'mailauth/lib/arc/index.js'
import { startDns, type Dns } from '../../../test/support/dnsmasq.js'
import { check, message, startTestFilter, type TestFilter } from './harness.js'

// The test client sends from 192.0.2.10 (harness INBOUND). Each domain is one case.
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const PRIVATE = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
const PUBLIC = publicKey.export({ type: 'spki', format: 'der' }).toString('base64')

let dns: Dns
let enforcing: TestFilter
let lenient: TestFilter
before(async () => {
  dns = await startDns({
    txt: [
      { name: 'pass.example', text: 'v=spf1 ip4:192.0.2.10 -all' },
      { name: 'sel._domainkey.pass.example', text: `v=DKIM1; k=rsa; p=${PUBLIC}` },
      { name: '_dmarc.pass.example', text: 'v=DMARC1; p=reject' },
      { name: 'fail.example', text: 'v=spf1 ip4:198.51.100.1 -all' },
      { name: '_dmarc.fail.example', text: 'v=DMARC1; p=reject' },
      { name: 'quarantine.example', text: 'v=spf1 -all' },
      { name: '_dmarc.quarantine.example', text: 'v=DMARC1; p=quarantine' },
      { name: 'spfonly.example', text: 'v=spf1 -all' },
      { name: 'soft.example', text: 'v=spf1 ~all' },
      { name: 'mail.pass.example', text: 'v=spf1 ip4:192.0.2.10 -all' },
      { name: 'arc._domainkey.lists.example', text: `v=DKIM1; k=rsa; p=${PUBLIC}` },
      { name: 'lists.example', text: 'v=spf1 ip4:192.0.2.10 -all' },
      // Authorises the private ranges a Docker bridge gateway has (some domains list their LANs).
      { name: 'lan.example', text: 'v=spf1 ip4:172.16.0.0/12 -all' },
      { name: '_dmarc.lan.example', text: 'v=DMARC1; p=reject' },
    ],
  })
  const env = { CLAMAV_ENABLED: 'false', SPAM_ENGINE: 'off', DNS_SERVERS: dns.server }
  enforcing = await startTestFilter({ ...env, DMARC_ENFORCE: 'true' })
  lenient = await startTestFilter({ ...env, DMARC_ENFORCE: 'false', SPF_FAIL: 'reject' })
})
after(async () => {
  await enforcing?.close()
  await lenient?.close()
  await dns?.close()
})

async function signed(text: string): Promise<string> {
  const { signatures, errors } = await dkimSign(text, {
    canonicalization: 'relaxed/relaxed',
    signTime: new Date(), // see services/delivery/src/outbound/dkim.ts
    signatureData: [{ signingDomain: 'pass.example', selector: 'sel', privateKey: PRIVATE }],
  })
  assert.deepEqual(errors, [])
  return signatures + text
}

const from = (domain: string) => ({ sender: `alice@${domain}`, helo: `mail.${domain}` })

test('SPF pass, DKIM pass and DMARC pass are written under our authserv-id and accepted', async () => {
  const text = await signed(message({ from: 'Alice <alice@pass.example>' }))
  const { verdict } = await check(enforcing.port, text, from('pass.example'))
  assert.equal(verdict.action, 'accept')
  const ar = verdict.headers.replace(/\r\n[ \t]+/g, ' ')
  assert.match(ar, /^Authentication-Results: mx\.ours\.example; /)
  assert.match(ar, /dkim=pass header\.i=@pass\.example header\.s=sel /)
  assert.match(ar, /spf=pass [^;]*smtp\.mailfrom=alice@pass\.example/)
  assert.match(ar, /spf=pass smtp\.helo=mail\.pass\.example/)
  assert.match(ar, /dmarc=pass [^;]*header\.from=pass\.example/)
  assert.deepEqual(verdict.checks.auth.status === 'checked' && verdict.checks.auth.dkim, [{ domain: 'pass.example', result: 'pass' }])
})

test('a body changed after signing no longer passes DKIM; a changed signed header fails it', async () => {
  const text = await signed(message({ from: 'Alice <alice@pass.example>' }))
  const body = await check(enforcing.port, text.replace('lunch tomorrow', 'dinner tonight'), from('pass.example'))
  assert.match(body.verdict.headers, /dkim=neutral \(body hash did not verify\)/)
  const header = await check(enforcing.port, text.replace('Subject: Lunch tomorrow', 'Subject: Dinner tonight'), from('pass.example'))
  assert.match(header.verdict.headers, /dkim=fail /)
  // SPF still passes and aligns, so DMARC passes: the message is accepted.
  assert.equal(header.verdict.action, 'accept')
})

test('SPF softfail and none are reported and accepted', async () => {
  const soft = await check(enforcing.port, message({ from: 'alice@soft.example' }), from('soft.example'))
  assert.match(soft.verdict.headers, /spf=softfail /)
  assert.equal(soft.verdict.action, 'accept')
  const none = await check(enforcing.port, message({ from: 'alice@none.example' }), from('none.example'))
  assert.match(none.verdict.headers, /spf=none /)
  assert.equal(none.verdict.action, 'accept')
})

test('SPF fail alone is tagged by default and refused with 550 5.7.23 when SPF_FAIL=reject', async () => {
  const tagged = await check(enforcing.port, message({ from: 'alice@spfonly.example' }), from('spfonly.example'))
  assert.match(tagged.verdict.headers, /spf=fail /)
  assert.equal(tagged.verdict.action, 'tag')
  const refused = await check(lenient.port, message({ from: 'alice@spfonly.example' }), from('spfonly.example'))
  assert.equal(refused.verdict.action, 'reject')
  assert.equal(refused.verdict.code, 550)
  assert.equal(refused.verdict.enhanced, '7.23')
})

test('DMARC p=reject is refused with 550 5.7.1 when enforced, filed as junk when not', async () => {
  const enforced = await check(enforcing.port, message({ from: 'alice@fail.example' }), {
    sender: 'alice@fail.example',
    helo: 'mail.remote.example',
  })
  assert.equal(enforced.verdict.action, 'reject')
  assert.equal(enforced.verdict.code, 550)
  assert.equal(enforced.verdict.enhanced, '7.1')
  assert.match(enforced.verdict.text ?? '', /DMARC policy of fail\.example/)
  assert.deepEqual(enforced.verdict.checks.auth.status === 'checked' && enforced.verdict.checks.auth.dmarc, {
    result: 'fail',
    policy: 'reject',
    domain: 'fail.example',
  })
  // A From: domain that differs from an SPF-passing MAIL FROM fails DMARC just the same.
  const spoofed = await check(enforcing.port, message({ from: 'ceo@fail.example' }), from('pass.example'))
  assert.equal(spoofed.verdict.action, 'reject')

  const lenientCase = await check(lenient.port, message({ from: 'ceo@fail.example' }), from('pass.example'))
  assert.equal(lenientCase.verdict.action, 'junk')
  assert.match(lenientCase.verdict.headers, /dmarc=fail /)
})

test('DMARC p=quarantine files the message as junk', async () => {
  const { verdict } = await check(enforcing.port, message({ from: 'alice@quarantine.example' }), from('pass.example'))
  assert.equal(verdict.action, 'junk')
  assert.match(verdict.headers, /dmarc=fail /)
})

test("behind Docker's userland proxy SPF is not checked, and DMARC rests on DKIM alone, a failure not acted on", async () => {
  // Every client of the published port has the bridge gateway's address (smtp-ingress: proxied).
  const proxied = (domain: string) => ({ ...from(domain), ip: '172.17.0.1', proxied: true as const })
  const unflat = (headers: string) => headers.replace(/\r\n[ \t]+/g, ' ')

  // SPF -all and DMARC p=reject, unsigned: from its own address, refused above; here accepted.
  for (const filter of [enforcing, lenient]) {
    const { verdict } = await check(filter.port, message({ from: 'alice@fail.example' }), proxied('fail.example'))
    assert.equal(verdict.action, 'accept')
    const ar = unflat(verdict.headers)
    assert.match(
      ar,
      /spf=none \(mx\.ours\.example: not checked, the client's address is hidden by a proxy\) smtp\.mailfrom=alice@fail\.example/,
    )
    assert.doesNotMatch(ar, /smtp\.helo=/)
    assert.match(
      ar,
      /dmarc=none \(mx\.ours\.example: not evaluated, SPF not checked and no aligned DKIM signature\) header\.from=fail\.example/,
    )
    assert.deepEqual(
      verdict.checks.auth.status === 'checked' && [verdict.checks.auth.spf, verdict.checks.auth.dmarc, verdict.checks.auth.proxied],
      ['none', { result: 'none', policy: 'reject', domain: 'fail.example' }, true],
    )
  }

  // A domain whose SPF lists the gateway's range gets no DMARC pass from it.
  const lan = await check(enforcing.port, message({ from: 'ceo@lan.example' }), proxied('lan.example'))
  assert.doesNotMatch(lan.verdict.headers, /=pass/)
  assert.equal(lan.verdict.checks.auth.status === 'checked' && lan.verdict.checks.auth.dmarc.result, 'none')

  // An aligned DKIM signature still makes DMARC pass.
  const signedText = await signed(message({ from: 'Alice <alice@pass.example>' }))
  const dkim = await check(enforcing.port, signedText, proxied('pass.example'))
  assert.equal(dkim.verdict.action, 'accept')
  assert.match(unflat(dkim.verdict.headers), /dkim=pass header\.i=@pass\.example .*spf=none .*dmarc=pass /)
})

test('counts forged Authentication-Results claiming our authserv-id and asks the caller to remove them', async () => {
  const text = message({
    from: 'Alice <alice@pass.example>',
    headers: [
      'Authentication-Results: MX.ours.example; spf=pass smtp.mailfrom=alice@pass.example; dmarc=pass',
      'Authentication-Results: (trust me) mx.ours.example; dkim=pass',
      'Authentication-Results: mx.remote.example; spf=pass smtp.mailfrom=alice@pass.example',
    ],
  })
  const { verdict } = await check(enforcing.port, text, from('pass.example'))
  assert.equal(verdict.checks.auth.forged, 2)
  assert.deepEqual(verdict.removeHeaders, [{ name: 'Authentication-Results', authservId: 'mx.ours.example' }])
  assert.equal(verdict.headers.match(/^Authentication-Results:/gm)?.length, 1)
})

test('mail from an authenticated user gets no SPF/DKIM/DMARC verdict', async () => {
  const { verdict } = await check(enforcing.port, message({ from: 'ceo@fail.example' }), {
    direction: 'outbound',
    user: 'alice@ours.example',
    sender: 'ceo@fail.example',
    recipients: ['x@remote.example'],
  })
  assert.equal(verdict.action, 'accept')
  assert.equal(verdict.headers, '')
  assert.deepEqual(verdict.checks.auth, { status: 'skipped', reason: 'outbound', forged: 0 })
})

test('verifies the ARC chain of a message a mailing list changed and then sealed (RFC 8617)', async () => {
  // The list receives Alice's signed message and checks it (dkim=pass), adds a footer, then
  // seals the changed message with the results it saw.
  const original = await signed(message({ from: 'Alice <alice@pass.example>' }))
  const resolver = new dnsPromises.Resolver()
  resolver.setServers([dns.server])
  const atList = await authenticate(original, {
    ip: '192.0.2.10',
    helo: 'mail.pass.example',
    sender: 'alice@pass.example',
    mta: 'mx.lists.example',
    resolver: (name, rrtype) => resolver.resolve(name, rrtype),
  })
  const listResults = atList.headers.match(/^Authentication-Results: ([\s\S]*?)\r\n(?![ \t])/m)?.[1] ?? ''
  assert.match(listResults, /dkim=pass/)
  const changed = original.replace('Alice\r\n', 'Alice\r\n-- \r\nThe lunch list\r\n')
  const seal = await sealMessage(changed, {
    signingDomain: 'lists.example',
    selector: 'arc',
    privateKey: PRIVATE,
    authResults: listResults,
    cv: 'none',
  })
  const forwarded = seal.toString() + changed
  // DMARC fails for pass.example (the footer broke DKIM, the list's MAIL FROM is not aligned):
  // without enforcement the message is kept, and the ARC result is there for the reader.
  const { verdict } = await check(lenient.port, forwarded, { sender: 'lunch-bounces@lists.example', helo: 'mail.lists.example' })
  const ar = verdict.headers.replace(/\r\n[ \t]+/g, ' ')
  assert.match(ar, /dkim=neutral \(body hash did not verify\)/)
  assert.match(ar, /arc=pass /)
  assert.ok(verdict.checks.auth.status === 'checked' && verdict.checks.auth.arc === 'pass')
})

test('with DNS down or hanging, mail is accepted labelled temperror (never unlabelled), within FILTER_SCAN_TIMEOUT', async (t) => {
  // Hanging: a UDP socket that reads queries and never answers. Down: a port nobody listens on.
  const hung = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => hung.bind(0, '127.0.0.1', () => resolve()))
  t.after(() => hung.close())
  const down = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => down.bind(0, '127.0.0.1', () => resolve()))
  const downPort = down.address().port
  await new Promise<void>((resolve) => down.close(() => resolve()))
  for (const [what, server] of [
    ['hanging', `127.0.0.1:${hung.address().port}`],
    ['down', `127.0.0.1:${downPort}`],
  ]) {
    const filter = await startTestFilter({ CLAMAV_ENABLED: 'false', SPAM_ENGINE: 'off', DNS_SERVERS: server, FILTER_SCAN_TIMEOUT: '2s' })
    t.after(() => filter.close())
    const started = Date.now()
    const { verdict } = await check(filter.port, await signed(message({ from: 'Alice <alice@pass.example>' })), from('pass.example'))
    const ar = verdict.headers.replace(/\r\n[ \t]+/g, ' ')
    assert.equal(verdict.action, 'accept', what)
    assert.match(ar, /^Authentication-Results: mx\.ours\.example; /, what)
    assert.match(ar, /dkim=temperror /, what)
    assert.match(ar, /spf=temperror .*smtp\.mailfrom=alice@pass\.example/, what)
    assert.match(ar, /dmarc=temperror/, what)
    t.diagnostic(`${what}: ${Date.now() - started} ms, ${verdict.checks.auth.status}`)
  }
})
