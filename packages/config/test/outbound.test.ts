import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { findDkimKey, loadConfig, tlsPolicyFor, transportFor } from '@facteur/config'

const base = { MAIL_DOMAIN: 'ours.example' }

test('outbound defaults: direct, opportunistic TLS, port 25, no delay warning, selector facteur', () => {
  const o = loadConfig(base).outbound
  assert.equal(o.mode, 'direct')
  assert.equal(o.tls, 'opportunistic')
  assert.equal(o.port, 25)
  assert.equal(o.delayWarningMs, null)
  assert.equal(o.dkimSelector, 'facteur')
  assert.equal(o.relay, undefined)
  assert.deepEqual(o.transportMap, [])
  assert.ok(Object.isFrozen(o))
})

test('OUTBOUND_TLS_POLICY: DOMAIN:LEVEL entries, matched as TRANSPORT_MAP matches; a wrong one names the setting', () => {
  const config = loadConfig({ ...base, OUTBOUND_TLS_POLICY: 'partner.example:verify, .corp.example:encrypt,old.example:none' })
  assert.equal(tlsPolicyFor(config.outbound, 'partner.example'), 'verify')
  assert.equal(tlsPolicyFor(config.outbound, 'mail.corp.example'), 'encrypt')
  assert.equal(tlsPolicyFor(config.outbound, 'corp.example'), undefined)
  assert.equal(tlsPolicyFor(config.outbound, 'OLD.example.'), 'none')
  for (const bad of ['partner.example', 'partner.example:secure', ':verify', 'a.example:may,a.example:none'])
    assert.throws(() => loadConfig({ ...base, OUTBOUND_TLS_POLICY: bad }), /^ConfigError: OUTBOUND_TLS_POLICY=/, bad)
})

test('TRANSPORT_MAP takes hosts, ports, bracketed addresses and mx: names; exact entries beat .parent ones', () => {
  const o = loadConfig({
    ...base,
    TRANSPORT_MAP:
      'lan.example=[10.0.0.5]:25, other.example=relay.host:587,.corp.example=mx:corp.example, x.corp.example=[IPv6:2001:db8::1]:2525',
  }).outbound
  assert.deepEqual(transportFor(o, 'lan.example'), { host: '10.0.0.5', port: 25, mx: false, text: '[10.0.0.5]:25' })
  assert.deepEqual(transportFor(o, 'OTHER.example'), { host: 'relay.host', port: 587, mx: false, text: 'relay.host:587' })
  assert.equal(transportFor(o, 'a.b.corp.example')?.host, 'corp.example')
  assert.equal(transportFor(o, 'a.b.corp.example')?.mx, true)
  assert.equal(transportFor(o, 'x.corp.example')?.host, '2001:db8::1')
  assert.equal(transportFor(o, 'corp.example'), undefined, '.corp.example is for subdomains only')
  assert.equal(transportFor(o, 'elsewhere.example'), undefined)
})

test('a wrong outbound setting stops start-up naming the variable', () => {
  assert.throws(
    () => loadConfig({ ...base, TRANSPORT_MAP: 'lan.example' }),
    /^ConfigError: TRANSPORT_MAP="lan.example" is not valid: expected DOMAIN=DESTINATION/,
  )
  assert.throws(
    () => loadConfig({ ...base, TRANSPORT_MAP: 'lan.example=host:99999' }),
    /TRANSPORT_MAP="lan.example=host:99999"|TRANSPORT_MAP="host:99999"/,
  )
  assert.throws(() => loadConfig({ ...base, TRANSPORT_MAP: 'a.example=h1, a.example=h2' }), /each domain once/)
  assert.throws(() => loadConfig({ ...base, OUTBOUND_MODE: 'relay' }), /RELAY_HOST is not set/)
  assert.throws(() => loadConfig({ ...base, OUTBOUND_MODE: 'smart' }), /OUTBOUND_MODE="smart" .* one of direct, relay, local/)
  assert.throws(() => loadConfig({ ...base, RELAY_HOST: 'r.example', RELAY_USER: 'u' }), /RELAY_PASSWORD is not set/)
  assert.throws(
    () => loadConfig({ ...base, RELAY_HOST: 'r.example', RELAY_USER: 'u', RELAY_PASSWORD: 'p', RELAY_TLS: 'none' }),
    /RELAY_TLS="none" .*no password is sent unencrypted/,
  )
  assert.throws(() => loadConfig({ ...base, RELAY_HOST: 'r.example:587' }), /the port goes in RELAY_PORT/)
  assert.throws(
    () => loadConfig({ ...base, FALLBACK_RELAY: '[10.0.0.9]', UNKNOWN_RECIPIENT: 'catchall:all@ours.example' }),
    /FALLBACK_RELAY/,
  )
  assert.throws(() => loadConfig({ ...base, RELAY_DOMAINS: 'ours.example' }), /RELAY_DOMAINS.*ours\.example is in both/)
  assert.throws(() => loadConfig({ ...base, DNS_SERVERS: '127.0.0.1:abc' }), /DNS_SERVERS/)
  assert.throws(() => loadConfig({ ...base, OUTBOUND_BIND_ADDRESS: 'eth0' }), /OUTBOUND_BIND_ADDRESS/)
  assert.throws(() => loadConfig({ ...base, DKIM_SELECTOR: 'no_underscore' }), /DKIM_SELECTOR/)
  assert.throws(() => loadConfig({ ...base, OUTBOUND_PORT: '0' }), /OUTBOUND_PORT/)
})

test('relay settings: port from RELAY_TLS, certificate checked unless told otherwise', () => {
  const starttls = loadConfig({
    ...base,
    OUTBOUND_MODE: 'relay',
    RELAY_HOST: 'smtp.provider.example',
    RELAY_USER: 'u',
    RELAY_PASSWORD: 'p',
  }).outbound.relay
  assert.deepEqual(starttls, { host: 'smtp.provider.example', port: 587, user: 'u', password: 'p', tls: 'starttls', verify: true })
  assert.equal(loadConfig({ ...base, RELAY_HOST: 'r.example', RELAY_TLS: 'tls' }).outbound.relay?.port, 465)
  assert.equal(loadConfig({ ...base, RELAY_HOST: 'r.example', RELAY_TLS_VERIFY: 'false' }).outbound.relay?.verify, false)
})

test('DNS_SERVERS takes IP and IP:PORT; DELAY_WARNING takes a duration or off', () => {
  const o = loadConfig({ ...base, DNS_SERVERS: '127.0.0.1:5353, ::1, [::1]:53', DELAY_WARNING: '4h' }).outbound
  assert.deepEqual(o.dnsServers, ['127.0.0.1:5353', '::1', '[::1]:53'])
  assert.equal(o.delayWarningMs, 4 * 3600_000)
  assert.equal(loadConfig({ ...base, DELAY_WARNING: 'off' }).outbound.delayWarningMs, null)
})

test("findDkimKey: DKIM_SELECTOR's key, else the domain's only key whatever its selector, the newest of several; never a longer domain's", async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-dkim-'))
  await fs.mkdir(path.join(dir, 'dkim'))
  const key = async (name: string, ageS: number) => {
    const file = path.join(dir, 'dkim', name)
    await fs.writeFile(file, 'x')
    const t = new Date(Date.now() - ageS * 1000)
    await fs.utimes(file, t, t)
  }
  const found = async (domain: string) => (await findDkimKey(dir, domain, 'facteur', ['ours.example', 'ours.example.uk']))?.selector ?? null
  assert.equal(await found('ours.example'), null)
  await key('ours.example.uk.other.key', 1)
  assert.equal(await found('ours.example'), null, "ours.example.uk's key is not ours.example's")
  await key('ours.example.mail.key', 100)
  assert.equal(await found('ours.example'), 'mail')
  await key('ours.example.2026a.key', 10)
  assert.equal(await found('ours.example'), '2026a', 'the newest')
  await key('ours.example.facteur.key', 1000)
  assert.equal(await found('ours.example'), 'facteur', "DKIM_SELECTOR's, however old")
})
