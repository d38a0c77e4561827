// MX selection against a real DNS server (dnsmasq on loopback).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig } from '@facteur/config'
import { startDns, type Dns } from '../../../test/support/dnsmasq.js'
import { resolverFor } from '@facteur/config'
import { createHopFinder, RouteError } from '../src/outbound/mx.js'

let dns: Dns
before(async () => {
  dns = await startDns({
    mx: [
      { domain: 'pref.example', host: 'b.pref.example', pref: 20 },
      { domain: 'pref.example', host: 'a.pref.example', pref: 10 },
      { domain: 'backup.example', host: 'primary.backup.example', pref: 10 },
      { domain: 'backup.example', host: 'us.backup.example', pref: 20 },
      { domain: 'backup.example', host: 'worse.backup.example', pref: 30 },
      { domain: 'selfbest.example', host: 'us.backup.example', pref: 5 },
      { domain: 'selfbest.example', host: 'primary.backup.example', pref: 10 },
      { domain: 'dual.example', host: 'mx.dual.example' },
    ],
    a: [
      { name: 'a.pref.example', ip: '127.0.0.11' },
      { name: 'b.pref.example', ip: '127.0.0.12' },
      { name: 'implicit.example', ip: '127.0.0.13' },
      { name: 'primary.backup.example', ip: '127.0.0.14' },
      { name: 'us.backup.example', ip: '127.0.0.1' },
      { name: 'worse.backup.example', ip: '127.0.0.15' },
      { name: 'mx.dual.example', ip: '127.0.0.16' },
    ],
    aaaa: [{ name: 'mx.dual.example', ip: 'fd00::16' }],
    extraArgs: ['--mx-host=null.example,.,0'],
  })
})
after(() => dns.close())

const finder = (env: Record<string, string> = {}) => {
  const config = loadConfig({ MAIL_DOMAIN: 'ours.example', DNS_SERVERS: dns.server, ...env })
  return createHopFinder(config, resolverFor(config.outbound.dnsServers))
}
const addresses = async (f: ReturnType<typeof finder>, domain: string) => (await f.mxHops(domain)).map((h) => h.address)

test('MX hosts in preference order; no MX means the domain itself (RFC 5321 §5.1)', async () => {
  assert.deepEqual(await addresses(finder(), 'pref.example'), ['127.0.0.11', '127.0.0.12'])
  assert.deepEqual(await finder().mxHops('implicit.example'), [{ name: 'implicit.example', address: '127.0.0.13', port: 25 }])
})

test('a null MX, a domain that does not exist: permanent; the reply says why', async () => {
  await assert.rejects(finder().mxHops('null.example'), (e: RouteError) => e.permanent && /^550 5\.1\.10 /.test(e.reply))
  await assert.rejects(finder().mxHops('nowhere.example'), (e: RouteError) => e.permanent && /^550 5\.1\.2 /.test(e.reply))
})

test('an MX that is this host drops itself and every worse MX; as the best MX it is a loop (5.4.6)', async () => {
  // Our address counts only when OUTBOUND_PORT is our SMTP_PORT (25 and 25 here).
  assert.deepEqual(await addresses(finder(), 'backup.example'), ['127.0.0.14'])
  await assert.rejects(finder().mxHops('selfbest.example'), (e: RouteError) => e.permanent && /^554 5\.4\.6 /.test(e.reply))
  // By name: MAIL_HOSTNAME.
  assert.deepEqual(await addresses(finder({ MAIL_HOSTNAME: 'us.backup.example', OUTBOUND_PORT: '2525' }), 'backup.example'), ['127.0.0.14'])
  // Another port: 127.0.0.1:2525 is not our listener.
  assert.deepEqual(await addresses(finder({ OUTBOUND_PORT: '2525' }), 'backup.example'), ['127.0.0.14', '127.0.0.1', '127.0.0.15'])
})

// Lookups only: nothing connects to fd00::16.
test('OUTBOUND_IP_PREFERENCE orders the addresses of a host; OUTBOUND_BIND_ADDRESS keeps its family', async () => {
  assert.deepEqual(await addresses(finder(), 'dual.example'), ['127.0.0.16', 'fd00::16'])
  assert.deepEqual(await addresses(finder({ OUTBOUND_IP_PREFERENCE: 'ipv6' }), 'dual.example'), ['fd00::16', '127.0.0.16'])
  assert.deepEqual(await addresses(finder({ OUTBOUND_BIND_ADDRESS: '127.0.0.1' }), 'dual.example'), ['127.0.0.16'])
})
