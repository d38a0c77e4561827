// The real client address behind a proxy: PROXY protocol v1 from PROXY_TRUSTED peers only (v2:
// test/proxy.test.ts), and the refusal to start when TRUSTED_NETWORKS holds the Docker bridge gateway.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import net from 'node:net'
import { once } from 'node:events'
import { loadConfig, ConfigError, type Config } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { openSpool } from '@facteur/spool'
import { openAccounts } from '@facteur/accounts'
import { openCertificates } from '@facteur/certs'
import { startIngress } from '../src/ingress.js'
import { bridgeGateway, parseDefaultRoute } from '@facteur/reception'
import { refuseTrustedGateway } from '../src/docker-gateway.js'
import { swaks, lastReply } from '../../../test/support/swaks.js'
import { startDns } from '../../../test/support/dnsmasq.js'
import { startTestFilter } from '../../filter/test/harness.js'

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-proxy-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

async function startMx(
  t: Parameters<typeof tempDir>[0],
  env: Record<string, string>,
  gateway: string | null = null,
): Promise<{ port: number; log: () => string; config: Config }> {
  const dir = await tempDir(t)
  const configDir = path.join(dir, 'config')
  await fs.mkdir(configDir)
  await fs.writeFile(path.join(configDir, 'users'), 'alice@ours.example:{PLAIN}x\n')
  const config = loadConfig({
    MAIL_DOMAIN: 'ours.example',
    CONFIG_DIR: configDir,
    SPOOL_DIR: path.join(dir, 'spool'),
    MAIL_DIR: path.join(dir, 'mail'),
    FILTER_URL: 'off',
    // No DNS query leaves for the system's resolver; senders' domains are not checked.
    DNS_SERVERS: '127.0.0.1:9',
    UNKNOWN_SENDER_DOMAIN: 'accept',
    ...env,
  })
  let out = ''
  const stream = new PassThrough().on('data', (c: Buffer) => (out += c.toString()))
  const logger = createLogger({ service: 'smtp-ingress', format: 'json', stream })
  const accounts = openAccounts({
    configDir,
    localDomains: config.localDomains,
    postmaster: config.postmaster,
    delimiter: config.recipientDelimiter,
  })
  await accounts.refresh()
  const certs = await openCertificates({ configDir, hostname: config.hostname })
  const mx = await startIngress({ config, logger, spool: await openSpool(config.spoolDir), accounts, certs, gateway })
  t.after(() => mx.close())
  return { port: mx.port, log: () => out, config }
}

const queuedIps = (log: string): string[] =>
  log
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { message: string; remoteIp?: string })
    .filter((l) => l.message === 'queued')
    .map((l) => l.remoteIp ?? '')

test('takes the client address from a PROXY header sent by a PROXY_TRUSTED peer, and logs it', async (t) => {
  const mx = await startMx(t, { SMTP_LISTEN: '127.0.0.1', SMTP_PORT: '0', PROXY_TRUSTED: '127.0.0.1' })
  const proxy = [
    '--proxy-family',
    'TCP4',
    '--proxy-source',
    '203.0.113.9',
    '--proxy-source-port',
    '40000',
    '--proxy-dest',
    '192.0.2.25',
    '--proxy-dest-port',
    '25',
  ]
  const out = await swaks([
    '--server',
    `127.0.0.1:${mx.port}`,
    '--from',
    'a@remote.example',
    '--to',
    'alice@ours.example',
    '--timeout',
    '10',
    ...proxy,
  ])
  assert.equal(out.code, 0, out.stdout + out.stderr)
  assert.match(lastReply(out, '.') ?? '', /^250 /)
  assert.deepEqual(queuedIps(mx.log()), ['203.0.113.9'])
})

test('expects no PROXY header from other peers, and refuses a trusted peer that sends none', async (t) => {
  const plain = await startMx(t, { SMTP_LISTEN: '127.0.0.1', SMTP_PORT: '0', PROXY_TRUSTED: '192.0.2.1' })
  const out = await swaks([
    '--server',
    `127.0.0.1:${plain.port}`,
    '--from',
    'a@remote.example',
    '--to',
    'alice@ours.example',
    '--timeout',
    '10',
  ])
  assert.equal(out.code, 0, out.stdout + out.stderr)
  assert.deepEqual(queuedIps(plain.log()), ['127.0.0.1'])

  const strict = await startMx(t, { SMTP_LISTEN: '127.0.0.1', SMTP_PORT: '0', PROXY_TRUSTED: '127.0.0.1' })
  const bare = await swaks([
    '--server',
    `127.0.0.1:${strict.port}`,
    '--from',
    'a@remote.example',
    '--to',
    'alice@ours.example',
    '--timeout',
    '5',
  ])
  assert.notEqual(bare.code, 0)
  assert.deepEqual(queuedIps(strict.log()), [])
})

test('PROXY_TRUSTED takes addresses, not networks', () => {
  assert.throws(
    () => loadConfig({ MAIL_DOMAIN: 'ours.example', PROXY_TRUSTED: '10.0.0.0/8' }),
    /^ConfigError: PROXY_TRUSTED="10.0.0.0\/8" is not valid/,
  )
})

const ROUTE = [
  'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
  'eth0\t00000000\t010013AC\t0003\t0\t0\t0\t00000000\t0\t0\t0',
  'eth0\t000013AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
].join('\n')

test('reads the default gateway from /proc/net/route', () => {
  assert.deepEqual(parseDefaultRoute(ROUTE), { iface: 'eth0', gateway: '172.19.0.1' })
  assert.equal(
    parseDefaultRoute(
      ROUTE.split('\n')
        .filter((l) => !l.includes('\t00000000\t010013AC'))
        .join('\n'),
    ),
    null,
  )
})

test('sees a bridge gateway only in a container whose default route leaves through a veth', async (t) => {
  const root = await tempDir(t)
  await fs.mkdir(path.join(root, 'proc/net'), { recursive: true })
  await fs.mkdir(path.join(root, 'sys/class/net/eth0'), { recursive: true })
  await fs.writeFile(path.join(root, 'proc/net/route'), ROUTE)
  await fs.writeFile(path.join(root, 'sys/class/net/eth0/ifindex'), '12\n')
  await fs.writeFile(path.join(root, 'sys/class/net/eth0/iflink'), '13\n')
  assert.equal(await bridgeGateway(root), null, 'not in a container')
  await fs.writeFile(path.join(root, '.dockerenv'), '')
  assert.equal(await bridgeGateway(root), '172.19.0.1')
  await fs.writeFile(path.join(root, 'sys/class/net/eth0/iflink'), '12\n')
  assert.equal(await bridgeGateway(root), null, 'network_mode: host')
})

// 127.0.0.9 plays the address every client behind a proxy shows: the Docker bridge gateway (a
// published port through the userland proxy), or a balancer's listed in SHARED_CLIENT_ADDRESSES.
const SHARED: { behind: string; env: Record<string, string>; gateway: string | null }[] = [
  { behind: 'the bridge gateway', env: {}, gateway: '127.0.0.9' },
  { behind: 'SHARED_CLIENT_ADDRESSES', env: { SHARED_CLIENT_ADDRESSES: '127.0.0.9' }, gateway: null },
]

for (const shared of SHARED)
  test(`${shared.behind}: sessions are not one client's, SMTP_MAX_CLIENTS_PER_IP does not hold them`, async (t) => {
    const mx = await startMx(
      t,
      { SMTP_LISTEN: '127.0.0.1', SMTP_PORT: '0', SMTP_MAX_CLIENTS_PER_IP: '2', SMTP_GREETING_DELAY: '0s', ...shared.env },
      shared.gateway,
    )
    const sockets: net.Socket[] = []
    const greet = async (localAddress: string): Promise<string> => {
      const s = net.connect({ host: '127.0.0.1', port: mx.port, localAddress })
      sockets.push(s)
      return String((await once(s, 'data'))[0]).slice(0, 9)
    }
    try {
      const fromGateway = await Promise.all([1, 2, 3].map(() => greet('127.0.0.9')))
      assert.deepEqual(fromGateway, ['220 mail.', '220 mail.', '220 mail.'])
      const fromOne = await Promise.all([1, 2, 3].map(() => greet('127.0.0.12')))
      assert.deepEqual(fromOne.sort(), ['220 mail.', '220 mail.', '421 4.7.0'], 'another address is counted')
    } finally {
      for (const s of sockets) s.destroy()
    }
  })

for (const shared of SHARED)
  test(`${shared.behind}: mail is not judged by the proxy's address, no SPF, no DMARC refusal without it`, async (t) => {
    // SPF -all and DMARC p=reject for an unsigned message: refused from the client's own address.
    const dns = await startDns({
      txt: [
        { name: 'remote.example', text: 'v=spf1 ip4:192.0.2.1 -all' },
        { name: '_dmarc.remote.example', text: 'v=DMARC1; p=reject' },
      ],
    })
    t.after(() => dns.close())
    const filter = await startTestFilter({ CLAMAV_ENABLED: 'false', SPAM_ENGINE: 'off', DNS_SERVERS: dns.server })
    t.after(() => filter.close())
    const mx = await startMx(
      t,
      { SMTP_LISTEN: '127.0.0.1', SMTP_PORT: '0', SMTP_GREETING_DELAY: '0s', FILTER_URL: `http://127.0.0.1:${filter.port}`, ...shared.env },
      shared.gateway,
    )
    const send = (localAddress: string) =>
      swaks([
        '--server',
        `127.0.0.1:${mx.port}`,
        '--local-interface',
        localAddress,
        '--from',
        'ceo@remote.example',
        '--h-From',
        'ceo@remote.example',
        '--to',
        'alice@ours.example',
        '--timeout',
        '10',
      ])
    const direct = await send('127.0.0.12')
    assert.match(lastReply(direct, '.') ?? '', /^550 5\.7\.1 Rejected by the DMARC policy of remote\.example/)

    const proxied = await send('127.0.0.9')
    assert.match(lastReply(proxied, '.') ?? '', /^250 /)
    const verdicts = filter
      .logs()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.message === 'verdict')
    assert.deepEqual(
      verdicts.map((v) => [v.remoteIp, v.action, v.spf, v.dmarc, v.proxied]),
      [
        ['127.0.0.12', 'reject', 'fail', 'fail', undefined],
        ['127.0.0.9', 'accept', 'none', 'none', true],
      ],
    )
  })

test('refuses to start when TRUSTED_NETWORKS contains the bridge gateway, naming the variable', () => {
  const config = loadConfig({ MAIL_DOMAIN: 'ours.example', TRUSTED_NETWORKS: '192.168.1.0/24, 172.16.0.0/12' })
  assert.throws(
    () => refuseTrustedGateway(config, '172.19.0.1'),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.equal(err.variable, 'TRUSTED_NETWORKS')
      assert.match(err.message, /172\.19\.0\.1, the Docker bridge gateway/)
      return true
    },
  )
  assert.doesNotThrow(() => refuseTrustedGateway(config, '10.9.0.1'))
  assert.doesNotThrow(() => refuseTrustedGateway(config, null))
})
