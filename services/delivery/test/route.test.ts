import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { openAccounts } from '@facteur/accounts'
import { loadConfig } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { createRouter } from '../src/outbound/route.js'
import type { HopFinder } from '../src/outbound/mx.js'
import { openRelayPasswords } from '../src/outbound/relay-passwords.js'

const finder: HopFinder = {
  hops: async (d) => [{ name: d.host, address: '192.0.2.1', port: d.port }],
  mxHops: async (domain) => [{ name: `mx.${domain}`, address: '192.0.2.2', port: 25 }],
}

async function router(env: Record<string, string>, relayPasswords = '') {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-route-'))
  await fs.writeFile(path.join(dir, 'users'), 'alice@ours.example:{PLAIN}x\n')
  await fs.writeFile(path.join(dir, 'relay_passwords'), relayPasswords)
  const config = loadConfig({ MAIL_DOMAIN: 'ours.example', CONFIG_DIR: dir, ...env })
  const accounts = openAccounts({ configDir: dir, localDomains: config.localDomains, postmaster: config.postmaster, delimiter: '+' })
  const passwords = openRelayPasswords({ configDir: dir, logger: createLogger({ service: 'test', level: 'error' }) })
  return createRouter(config, accounts, finder, { apply: async (_domain, hops) => hops }, passwords)
}

const summary = async (r: Awaited<ReturnType<typeof router>>, address: string, sender?: string): Promise<string> => {
  const route = await r.route(address, sender)
  if (route.kind !== 'remote') return route.kind
  const [hop] = await route.hops()
  return `${route.key} ${hop.name}:${hop.port} ${route.session.tls}${route.session.auth ? ` auth:${route.session.auth.user}` : ''}`
}

test('the first rule that applies wins: local, TRANSPORT_MAP, RELAY_DOMAINS, then the mode', async () => {
  const r = await router({
    OUTBOUND_MODE: 'relay',
    RELAY_HOST: 'smtp.provider.example',
    RELAY_USER: 'u',
    RELAY_PASSWORD: 'p',
    TRANSPORT_MAP: 'lan.example=[10.0.0.5]:25, backup.example=[10.0.0.6]:2525, .corp.example=smtps.corp.example:465',
    RELAY_DOMAINS: 'backup.example, second.example',
    FALLBACK_RELAY: '[10.0.0.9]:25',
  })
  assert.equal(await summary(r, 'alice@ours.example'), 'local')
  assert.equal(await summary(r, 'postmaster@ours.example'), 'local')
  assert.equal(await summary(r, 'nobody@ours.example'), 'fallback:[10.0.0.9]:25 10.0.0.9:25 opportunistic')
  assert.equal(await summary(r, 'pc@lan.example'), 'transport:[10.0.0.5]:25 10.0.0.5:25 opportunistic')
  assert.equal(
    await summary(r, 'x@backup.example'),
    'transport:[10.0.0.6]:2525 10.0.0.6:2525 opportunistic',
    'TRANSPORT_MAP before RELAY_DOMAINS',
  )
  assert.equal(await summary(r, 'x@a.corp.example'), 'transport:smtps.corp.example:465 smtps.corp.example:465 implicit')
  assert.equal(
    await summary(r, 'x@second.example'),
    'mx:second.example mx.second.example:25 opportunistic',
    'a backup MX forwards to the MX, not the relay',
  )
  assert.equal(await summary(r, 'x@far.example'), 'relay smtp.provider.example:587 require auth:u')
})

test('local mode refuses other domains; direct mode asks their MX; without FALLBACK_RELAY unknown names stay local', async () => {
  const local = await router({ OUTBOUND_MODE: 'local', TRANSPORT_MAP: 'lan.example=[10.0.0.5]' })
  assert.deepEqual(await local.route('x@far.example'), {
    kind: 'refused',
    reply: '550 5.7.1 This server does not send mail to other domains',
  })
  assert.equal(await summary(local, 'pc@lan.example'), 'transport:[10.0.0.5] 10.0.0.5:25 opportunistic')
  const direct = await router({ OUTBOUND_TLS: 'require' })
  assert.equal(await summary(direct, 'x@far.example'), 'mx:far.example mx.far.example:25 require')
  assert.equal(await summary(direct, 'nobody@ours.example'), 'local')
})

test('SENDER_RELAY_MAP: by the sender address, its domain, a .parent; after TRANSPORT_MAP, before RELAY_HOST; credentials from relay_passwords', async () => {
  const r = await router(
    {
      OUTBOUND_MODE: 'relay',
      RELAY_HOST: 'smtp.provider.example',
      TRANSPORT_MAP: 'lan.example=[10.0.0.5]:25',
      SENDER_RELAY_MAP: 'ceo@ours.example=[10.0.0.7]:587, ours.example=smtp.mailer.example:587, .sub.example=smtps.sub.example:465',
    },
    [
      '# relay_passwords',
      'ceo@ours.example ceo:c:o:l:o:n',
      '@ours.example  dom:secret',
      '[10.0.0.7]:587 never:used',
      'smtp.mailer.example:587 not:used',
      'smtps.sub.example:465 sub:secret',
      'broken',
    ].join('\n'),
  )
  assert.equal(await summary(r, 'x@far.example', 'ceo@ours.example'), 'sender-relay:[10.0.0.7]:587|ceo 10.0.0.7:587 require auth:ceo')
  assert.equal(
    await summary(r, 'x@far.example', 'Bob@Ours.Example'),
    'sender-relay:smtp.mailer.example:587|dom smtp.mailer.example:587 require auth:dom',
  )
  assert.equal(
    await summary(r, 'x@far.example', 'a@b.sub.example'),
    'sender-relay:smtps.sub.example:465|sub smtps.sub.example:465 implicit auth:sub',
  )
  assert.equal(
    await summary(r, 'x@far.example', 'a@sub.example'),
    'relay smtp.provider.example:587 require',
    '.parent is for subdomains only',
  )
  assert.equal(await summary(r, 'x@far.example', ''), 'relay smtp.provider.example:587 require', 'the null sender')
  assert.equal(await summary(r, 'pc@lan.example', 'bob@ours.example'), 'transport:[10.0.0.5]:25 10.0.0.5:25 opportunistic')
  assert.equal(await summary(r, 'alice@ours.example', 'bob@ours.example'), 'local')
  const plain = await router({ SENDER_RELAY_MAP: 'ours.example=[10.0.0.8]' })
  assert.equal(
    await summary(plain, 'x@far.example', 'bob@ours.example'),
    'sender-relay:[10.0.0.8]| 10.0.0.8:25 opportunistic',
    'no credentials: no TLS demanded',
  )
})

test('SENDER_RELAY_MAP entries that are not KEY=DESTINATION stop the service with one line naming the setting', () => {
  for (const bad of ['ours.example', 'ours.example=[10.0.0.1', 'a@=[10.0.0.1]', 'ours.example=[10.0.0.1],ours.example=[10.0.0.2]'])
    assert.throws(() => loadConfig({ MAIL_DOMAIN: 'ours.example', SENDER_RELAY_MAP: bad }), /SENDER_RELAY_MAP/, bad)
})
