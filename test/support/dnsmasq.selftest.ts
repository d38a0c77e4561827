// Self-test for dnsmasq.ts: MX, A, AAAA, PTR, long and comma-holding TXT records, NXDOMAIN.
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { test } from 'node:test'
import { startDns } from './dnsmasq.js'

test('dnsmasq answers MX, A, AAAA, PTR and TXT records, NXDOMAIN for the rest', async (t) => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64')
  const dkim = `v=DKIM1; k=rsa; p=${p}`
  const { publicKey: big } = generateKeyPairSync('rsa', { modulusLength: 4096 })
  const dkimBig = `v=DKIM1; k=rsa; p=${big.export({ type: 'spki', format: 'der' }).toString('base64')}`
  const dmarc = 'v=DMARC1; p=reject; rua=mailto:a@ours.example,mailto:b@ours.example'

  const dns = await startDns({
    mx: [
      { domain: 'ours.example', host: 'mx1.ours.example', pref: 10 },
      { domain: 'ours.example', host: 'mx2.ours.example', pref: 20 },
    ],
    a: [{ name: 'mx1.ours.example', ip: '127.0.0.1' }],
    aaaa: [{ name: 'mx1.ours.example', ip: '::1' }],
    ptr: [{ ip: '127.0.0.2', name: 'client.remote.example' }],
    txt: [
      { name: 'sel._domainkey.ours.example', text: dkim },
      { name: 'big._domainkey.ours.example', text: dkimBig },
      { name: '_dmarc.ours.example', text: dmarc },
      { name: 'ours.example', text: 'v=spf1 ip4:127.0.0.1 -all' },
      { name: 'two.ours.example', text: ['first', 'sec"ond'] },
    ],
  })
  t.after(() => dns.close())
  assert.equal(dns.server, `127.0.0.1:${dns.port}`)
  const r = dns.resolver()

  const mx = await r.resolveMx('ours.example')
  assert.deepEqual(
    mx.sort((a, b) => a.priority - b.priority),
    [
      { exchange: 'mx1.ours.example', priority: 10 },
      { exchange: 'mx2.ours.example', priority: 20 },
    ],
  )
  assert.deepEqual(await r.resolve4('mx1.ours.example'), ['127.0.0.1'])
  assert.deepEqual(await r.resolve6('mx1.ours.example'), ['::1'])
  assert.deepEqual(await r.reverse('127.0.0.2'), ['client.remote.example'])

  const [key] = await r.resolveTxt('sel._domainkey.ours.example')
  assert.ok(key.length > 1 && key.every((s) => s.length <= 255), 'split into <= 255-octet strings')
  assert.equal(key.join(''), dkim)
  assert.equal((await r.resolveTxt('big._domainkey.ours.example'))[0].join(''), dkimBig)
  assert.deepEqual(await r.resolveTxt('_dmarc.ours.example'), [[dmarc]])
  assert.deepEqual(await r.resolveTxt('ours.example'), [['v=spf1 ip4:127.0.0.1 -all']])
  assert.deepEqual(await r.resolveTxt('two.ours.example'), [['first', 'sec"ond']])

  await assert.rejects(r.resolveMx('nowhere.example'), { code: 'ENOTFOUND' })
  await assert.rejects(r.resolve4('mx2.ours.example'), { code: 'ENOTFOUND' })
  await assert.rejects(r.resolve4('ours.example'), { code: 'ENODATA' })
})
