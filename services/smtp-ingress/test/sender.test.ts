// UNKNOWN_SENDER_DOMAIN: MAIL FROM's domain judged against a real DNS server (dnsmasq), in both
// modes, as the MX's policy asks it.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig } from '@facteur/config'
import { startDns, type Dns } from '../../../test/support/dnsmasq.js'
import { senderDomainCheck } from '../src/policy/sender.js'
import { policyResolver } from '../src/policy/lookups.js'

let dns: Dns
before(async () => {
  dns = await startDns({
    mx: [
      { domain: 'mx.example', host: 'mail.mx.example' },
      { domain: 'nullmx.example', host: '.', pref: 0 },
    ],
    a: [{ name: 'a-only.example', ip: '192.0.2.1' }],
    aaaa: [{ name: 'aaaa-only.example', ip: '2001:db8::1' }],
    // The name exists, with no MX, A or AAAA record: nothing to return mail to.
    txt: [{ name: 'txt-only.example', text: 'v=spf1 -all' }],
  })
})
after(() => dns?.close())

const check = (mode: string) => {
  const config = loadConfig({ MAIL_DOMAIN: 'ours.example', DNS_SERVERS: dns.server, UNKNOWN_SENDER_DOMAIN: mode })
  const sender = senderDomainCheck(config, policyResolver(config))!
  return async (address: string): Promise<string> => (await sender(address))?.reply ?? 'accepted'
}

test('accepts a sender whose domain has an MX, or only an A or AAAA record (RFC 5321 §5.1), our own and the null sender', async () => {
  const defer = check('defer')
  for (const address of ['a@mx.example', 'a@A-Only.Example', 'a@aaaa-only.example', 'a@ours.example', '', 'a@[192.0.2.1]'])
    assert.equal(await defer(address), 'accepted', address)
})

test("defers a domain that does not exist or has nowhere to take mail (450 4.1.8, Postfix's default), or refuses it (550 5.1.8)", async () => {
  const [defer, reject] = [check('defer'), check('reject')]
  for (const domain of ['nowhere.example', 'txt-only.example', 'b..example', `${'x'.repeat(64)}.example`]) {
    assert.equal(await defer(`a@${domain}`), `450 4.1.8 Sender address rejected: Domain ${domain} not found`)
    assert.equal(await reject(`a@${domain}`), `550 5.1.8 Sender address rejected: Domain ${domain} not found`)
  }
})

test('refuses a null MX domain with 550 5.7.27 in either mode (RFC 7505 §4.2)', async () => {
  for (const mode of ['defer', 'reject'])
    assert.equal(await check(mode)('a@nullmx.example'), '550 5.7.27 Sender address rejected: nullmx.example does not accept mail (null MX)')
})

test('defers with 451 4.4.3 while DNS does not answer, and checks nothing when UNKNOWN_SENDER_DOMAIN=accept', async () => {
  const reject = check('reject')
  await dns.pause()
  try {
    assert.equal(await reject('a@mx.example'), '451 4.4.3 Sender address rejected: cannot look up mx.example for now, try again later')
  } finally {
    await dns.resume()
  }
  const config = loadConfig({ MAIL_DOMAIN: 'ours.example', UNKNOWN_SENDER_DOMAIN: 'accept' })
  assert.equal(senderDomainCheck(config, policyResolver(config)), null)
  assert.throws(
    () => loadConfig({ MAIL_DOMAIN: 'ours.example', UNKNOWN_SENDER_DOMAIN: 'bounce' }),
    /^ConfigError: UNKNOWN_SENDER_DOMAIN="bounce"/,
  )
})
