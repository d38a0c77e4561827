// Moving from docker-mailserver: `mailctl import docker-mailserver DIR` against the running
// appliance, DIR laid out as docker-mailserver's docker-data/dms/config, its password hashes made
// by the real doveadm pw as `setup email add` makes them (SHA512-CRYPT), its DKIM key in
// opendkim's PKCS#1 form. Then: the user authenticates on submission with the password they had,
// an alias and a domain catch-all deliver into the Maildir docker-mailserver left
// (/var/mail/DOMAIN/USER, its old message kept), the quota is theirs, outbound mail is signed with
// the imported key, and a second run changes nothing.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { startAppliance, ROOT, type Appliance } from './support/appliance.js'
import { startScriptedMx, type ScriptedMx } from './support/scripted-mx.js'
import { swaksMail, swaksSubmit, lastReply } from './support/swaks.js'
import { readMaildir, waitForCount } from './support/mbox.js'
import { run, tempDir, removeDir } from './support/process.js'

let app: Appliance
let mx: ScriptedMx
let dms: string

const doveadm = async (password: string): Promise<string> =>
  (await promisify(execFile)('/usr/bin/doveadm', ['pw', '-s', 'SHA512-CRYPT', '-p', password])).stdout.trim()
const mailctl = (...args: string[]) => run('npx', ['mailctl', ...args], { cwd: ROOT, env: app.env, timeoutMs: 30_000 })

before(async () => {
  dms = await tempDir('dms-config')
  await fs.writeFile(
    path.join(dms, 'postfix-accounts.cf'),
    `# written by setup email add\nalice@ours.example|${await doveadm('alice old password')}\r\nbob@second.example|${await doveadm('bob old password')}|userdb_mail=maildir:/var/mail/second.example/bob\n`,
  )
  await fs.writeFile(path.join(dms, 'dovecot-quotas.cf'), 'alice@ours.example:50M\n')
  await fs.writeFile(
    path.join(dms, 'postfix-virtual.cf'),
    'info@ours.example alice@ours.example,bob@second.example\n@second.example bob@second.example\nwebmaster alice@ours.example\n',
  )
  await fs.writeFile(path.join(dms, 'postfix-regexp.cf'), '/^sales-.*@ours\\.example$/ alice@ours.example\n')
  // setup relay add-domain / add-auth: a relay for ours.example and its credentials.
  await fs.writeFile(path.join(dms, 'postfix-relaymap.cf'), '@ours.example [smtp.relay.example]:587\n@second.example\n')
  await fs.writeFile(path.join(dms, 'postfix-sasl-password.cf'), '@ours.example relayuser:p4ss:with:colons\n')
  // setup email restrict add send|receive: an account that only receives, one that only sends.
  await fs.writeFile(path.join(dms, 'postfix-send-access.cf'), 'info@ours.example REJECT\n')
  await fs.writeFile(path.join(dms, 'postfix-receive-access.cf'), 'noreply@second.example REJECT\n')
  await fs.mkdir(path.join(dms, 'opendkim', 'keys', 'ours.example'), { recursive: true })
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  await fs.writeFile(
    path.join(dms, 'opendkim', 'keys', 'ours.example', 'mail.private'),
    privateKey.export({ type: 'pkcs1', format: 'pem' }),
  )

  mx = await startScriptedMx()
  app = await startAppliance({
    services: ['smtp-ingress', 'delivery', 'submission'],
    env: {
      LOCAL_DOMAINS: 'ours.example,second.example',
      MAILBOX_FORMAT: 'maildir',
      TRANSPORT_MAP: `far.example=[127.0.0.1]:${mx.port}`,
    },
  })
  // What docker-mailserver left in alice's Maildir.
  const cur = path.join(app.mailDir, 'ours.example', 'alice', 'cur')
  await fs.mkdir(cur, { recursive: true })
  await fs.writeFile(path.join(cur, '1700000000.M1P1.old:2,S'), 'Subject: kept from before\r\n\r\nold\r\n')
})

after(async () => {
  await app?.stop()
  await mx?.close()
  if (dms) await removeDir(dms)
})

test('a docker-mailserver config directory is imported: users with their hashes and quota, aliases, the DKIM key; what is not taken is said', async () => {
  const r = await mailctl('import', 'docker-mailserver', dms)
  assert.equal(r.code, 0, r.stdout + r.stderr)
  assert.match(r.stdout, /^imported 2 users, 2 aliases, 1 DKIM keys, 1 relay credentials, 2 restrictions, 1 regexp aliases from /m)
  assert.equal(await fs.readFile(path.join(app.configDir, 'sender_access'), 'utf8'), 'info@ours.example REJECT\n')
  assert.equal(await fs.readFile(path.join(app.configDir, 'recipient_access'), 'utf8'), 'noreply@second.example REJECT\n')
  assert.match(r.stdout, /^; set SENDER_RELAY_MAP=ours\.example=\[smtp\.relay\.example\]:587: /m)
  assert.match(r.stdout, /postfix-relaymap\.cf: @second\.example \(no relay: it skipped DEFAULT_RELAY_HOST\) is not taken/)
  assert.doesNotMatch(r.stdout, /p4ss/, 'a password is never printed')
  const passwords = path.join(app.configDir, 'relay_passwords')
  assert.equal(await fs.readFile(passwords, 'utf8'), '@ours.example relayuser:p4ss:with:colons\n')
  assert.equal((await fs.stat(passwords)).mode & 0o077, 0o040, 'readable by the services, not by others')
  assert.match(r.stdout, /webmaster: an alias of a bare local part/)
  assert.equal(await fs.readFile(path.join(app.configDir, 'aliases_regexp'), 'utf8'), '/^sales-.*@ours\\.example$/ alice@ours.example\n')
  const quota = await mailctl('user', 'quota', 'alice@ours.example')
  assert.equal(quota.stdout.trim(), `alice@ours.example: ${50 * 1024 * 1024} bytes`)

  const again = await mailctl('import', 'docker-mailserver', dms)
  assert.match(
    again.stdout,
    /^imported 0 users, 0 aliases, 0 DKIM keys, 0 relay credentials, 0 restrictions, 0 regexp aliases from /m,
    'a second run changes nothing',
  )
  assert.match(again.stdout, /relay_passwords: @ours\.example is there already, kept as it is/)
})

test('the imported user authenticates with the password they had; aliases and the catch-all deliver into the Maildirs in place', async () => {
  const port = app.port('submission', 'submission')
  const sent = await swaksSubmit(port, 'alice@ours.example', 'alice old password', [
    '--from',
    'alice@ours.example',
    '--to',
    'friend@far.example',
    '--header',
    'Subject: signed with the imported key',
    '--timeout',
    '15',
  ])
  assert.match(lastReply(sent, '.') ?? '', /^250 /, sent.stdout)
  const wrong = await swaksSubmit(port, 'bob@second.example', 'not his password', ['--quit-after', 'AUTH', '--timeout', '15'])
  assert.equal(lastReply(wrong, 'AUTH'), '535 5.7.8 Authentication credentials invalid')

  const mxPort = app.port('smtp-ingress', 'smtp')
  for (const to of ['info@ours.example', 'anyone@second.example', 'sales-eu@ours.example']) {
    const r = await swaksMail(mxPort, { sender: 'x@sender.test', to, subject: `to ${to}` })
    assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
  }
  const alice = path.join(app.mailDir, 'ours.example', 'alice')
  const bob = path.join(app.mailDir, 'second.example', 'bob')
  const inAlice = await waitForCount(() => readMaildir(alice), 2, 20_000)
  assert.ok(inAlice.some((m) => m.includes('Subject: kept from before')))
  assert.ok(inAlice.some((m) => m.includes('Subject: to info@ours.example')))
  await waitForCount(async () => (await readMaildir(alice)).filter((m) => m.includes('Subject: to sales-eu@ours.example')), 1, 20_000)
  const inBob = await waitForCount(() => readMaildir(bob), 2, 20_000)
  assert.ok(inBob.some((m) => m.includes('Subject: to anyone@second.example')))

  const [out] = await waitForCount(async () => mx.messages.filter((m) => m.to.includes('friend@far.example')), 1, 20_000)
  assert.match(out.data.toString(), /^DKIM-Signature: [^]*?d=ours\.example;[^]*?s=mail;/m)
})

test('a directory naming a domain that is not in LOCAL_DOMAINS is refused whole, with the domains to add', async () => {
  const other = await tempDir('dms-other')
  try {
    await fs.writeFile(path.join(other, 'postfix-accounts.cf'), `carol@third.example|${await doveadm('x')}\n`)
    const r = await mailctl('import', 'docker-mailserver', other)
    assert.equal(r.code, 64)
    assert.equal(r.stderr.trim(), 'mailctl: add third.example to LOCAL_DOMAINS first (now ours.example, second.example)')
  } finally {
    await removeDir(other)
  }
})
