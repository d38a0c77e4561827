// `mailctl dns check DOMAIN` against a real dnsmasq: a domain published as `mailctl dns show`
// says passes every check; one published wrongly (its MX elsewhere, two SPF records, another
// DKIM key, no DMARC, a PTR naming another host) fails each, saying what is wrong, and exits 1.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import path from 'node:path'
import { ROOT } from './support/appliance.js'
import { startDns, type Dns } from './support/dnsmasq.js'
import { run, runOk, tempDir, removeDir } from './support/process.js'

let dns: Dns
let dir: string
let env: Record<string, string>

const mailctl = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', '--conditions=source', path.join(ROOT, 'packages/mailctl/src/main.ts'), ...args], {
    env,
    cwd: ROOT,
    timeoutMs: 30_000,
  })

before(async () => {
  dir = await tempDir('dns-check')
  env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    ENV_FILE: '/dev/null',
    MAIL_DOMAIN: 'ours.example',
    MAIL_HOSTNAME: 'mx.ours.example',
    LOCAL_DOMAINS: 'ours.example,second.example',
    CONFIG_DIR: dir,
    SPOOL_DIR: path.join(dir, 'spool'),
    MAIL_DIR: path.join(dir, 'mail'),
  }
  // Our key for each domain, and the record `mailctl dns show` prints for ours.example.
  const records: Record<string, string> = {}
  for (const domain of ['ours.example', 'second.example']) {
    const out = (
      await runOk(
        process.execPath,
        ['--import', 'tsx', '--conditions=source', path.join(ROOT, 'packages/mailctl/src/main.ts'), 'dkim', 'keygen', domain],
        { env, cwd: ROOT },
      )
    ).stdout
    records[domain] = [...(/IN TXT (.*)$/m.exec(out)?.[1] ?? '').matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('')
  }
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64')
  dns = await startDns({
    mx: [
      { domain: 'ours.example', host: 'mx.ours.example' },
      { domain: 'second.example', host: 'mail.elsewhere.example' },
    ],
    a: [{ name: 'mx.ours.example', ip: '127.0.0.1' }],
    ptr: [
      { ip: '127.0.0.1', name: 'mx.ours.example' },
      { ip: '127.0.0.2', name: 'host-2.isp.example' },
    ],
    txt: [
      { name: 'ours.example', text: 'v=spf1 ip4:127.0.0.1 -all' },
      { name: 'facteur._domainkey.ours.example', text: records['ours.example'] },
      { name: '_dmarc.ours.example', text: 'v=DMARC1; p=quarantine; rua=mailto:postmaster@ours.example' },
      { name: 'second.example', text: 'v=spf1 mx -all' },
      { name: 'second.example', text: 'v=spf1 a -all' },
      { name: 'facteur._domainkey.second.example', text: `v=DKIM1; k=rsa; p=${other}` },
    ],
  })
  env.DNS_SERVERS = dns.server
})

after(async () => {
  await dns?.close()
  if (dir) await removeDir(dir)
})

test('a domain published as mailctl dns show says passes every check', async () => {
  const r = await mailctl('dns', 'check', 'ours.example', '--address=127.0.0.1')
  assert.equal(r.code, 0, r.stdout + r.stderr)
  const lines = r.stdout.trim().split('\n')
  assert.deepEqual(
    lines.map((l) => l.split(/\s+/).slice(0, 2).join(' ')),
    ['ok MX', 'ok A', 'ok PTR', 'ok SPF', 'ok DKIM', 'ok DMARC', '; every'],
  )
  assert.match(r.stdout, /^ok {3}SPF {3}v=spf1 ip4:127\.0\.0\.1 -all \(pass for 127\.0\.0\.1\)$/m)
  assert.match(r.stdout, /^ok {3}DMARC p=quarantine, reports to mailto:postmaster@ours\.example$/m)
})

test('a domain published wrongly fails each check, saying what is wrong, and exits 1', async () => {
  const r = await mailctl('dns', 'check', 'second.example', '--address=127.0.0.2')
  assert.equal(r.code, 1, r.stdout + r.stderr)
  assert.match(r.stdout, /^FAIL MX {4}10 mail\.elsewhere\.example: none is MAIL_HOSTNAME \(mx\.ours\.example\)$/m)
  assert.match(r.stdout, /^FAIL A {5}mx\.ours\.example is 127\.0\.0\.1, not 127\.0\.0\.2$/m)
  assert.match(r.stdout, /^FAIL PTR {3}127\.0\.0\.2 is host-2\.isp\.example, not MAIL_HOSTNAME \(mx\.ours\.example\)$/m)
  assert.match(r.stdout, /^FAIL SPF {3}second\.example has 2 SPF records: receivers take none \(RFC 7208 §4\.5 permerror\)$/m)
  assert.match(r.stdout, /^FAIL DKIM {2}facteur\._domainkey\.second\.example holds another key than /m)
  assert.match(r.stdout, /^warn DMARC _dmarc\.second\.example has no DMARC record/m)
  assert.match(r.stdout, /^; 5 check\(s\) failed$/m)
})
