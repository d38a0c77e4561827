// Mailbox quotas on the running appliance: a user's quota set with mailctl (the users file's
// Dovecot field), the copy that fills the mailbox delivered, the next deferred 452 4.2.2, and
// further mail refused at RCPT (552 5.2.2) on :25 and on submission, unless an alias also reaches
// a mailbox with room.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { startAppliance, ROOT, type Appliance } from './support/appliance.js'
import { run } from './support/process.js'
import { swaks, swaksMail, lastReply } from './support/swaks.js'
import { readMbox, waitForCount } from './support/mbox.js'
import { startDovecot } from './support/dovecot.js'
import { tempDir, removeDir } from './support/process.js'
import { parseUsers, withQuota } from '@facteur/accounts'

let mx: Appliance
before(async () => {
  mx = await startAppliance({
    users: { 'bob@ours.example': 'pw-bob-123', 'alice@ours.example': 'pw-alice-123', 'carol@ours.example': 'pw-carol-123' },
    aliases: 'team@ours.example: bob@ours.example, alice@ours.example\n',
    services: ['smtp-ingress', 'delivery', 'submission'],
  })
})
after(() => mx?.stop())

const mailctl = (args: string[]) => run('npx', ['mailctl', ...args], { cwd: ROOT, env: mx.env, timeoutMs: 30_000 })
const send = (to: string, subject: string) =>
  swaksMail(mx.port('smtp-ingress', 'smtp'), { sender: 'sender@remote.example', to, subject, body: 'x'.repeat(2000) })

test('mailctl sets a quota; the copy that fills the mailbox is delivered, the next deferred, then mail is refused at RCPT', async () => {
  const set = await mailctl(['user', 'quota', 'bob@ours.example', '3K'])
  assert.equal(set.code, 0, set.stderr)
  assert.equal(set.stdout.trim(), 'bob@ours.example: quota 3072 bytes')
  assert.equal((await mailctl(['user', 'quota', 'bob@ours.example'])).stdout.trim(), 'bob@ours.example: 3072 bytes')

  for (const subject of ['one', 'two']) assert.match(lastReply(await send('bob@ours.example', subject), '.') ?? '', /^250 /)
  await waitForCount(() => readMbox(path.join(mx.mailDir, 'bob')), 2)
  // Taken (nobody knew the mailbox full yet), then deferred by delivery, which lists it.
  assert.match(lastReply(await send('bob@ours.example', 'three'), '.') ?? '', /^250 /)
  await mx.waitForLog(/deferred .*rcpt=bob@ours\.example reply="452 4\.2\.2 Mailbox full"/)
  await mx.waitForLog(/mailbox full rcpt=bob@ours\.example/)

  const refused = await send('bob@ours.example', 'four')
  assert.equal(lastReply(refused, 'RCPT'), '552 5.2.2 Mailbox full')
  const submission = await swaks([
    '--server',
    `127.0.0.1:${mx.port('submission', 'submission')}`,
    '--tls',
    '--auth-user',
    'alice@ours.example',
    '--auth-password',
    'pw-alice-123',
    '--from',
    'alice@ours.example',
    '--to',
    'bob@ours.example',
    '--timeout',
    '15',
  ])
  assert.equal(lastReply(submission, 'RCPT'), '552 5.2.2 Mailbox full', submission.stdout)

  // An alias that also reaches a mailbox with room is taken: alice gets her copy, bob's waits.
  assert.match(lastReply(await send('team@ours.example', 'to the team'), '.') ?? '', /^250 /)
  const alice = await waitForCount(() => readMbox(path.join(mx.mailDir, 'alice')), 1)
  assert.ok(alice[0].includes('Subject: to the team'))
  const bobs = await readMbox(path.join(mx.mailDir, 'bob'))
  assert.equal(bobs.filter((m) => !m.includes('\nAuto-Submitted: auto-generated\n')).length, 2)
})

test('QUOTA_WARNING: crossing 80 % then 95 % of the quota sends the owner one notice each, the second into a mailbox the copy filled', async () => {
  // carol: 10 KiB; each message is about 2.3 KB, so the 4th crosses 80 %, the 5th 95 % (and fills it).
  assert.equal((await mailctl(['user', 'quota', 'carol@ours.example', '10K'])).code, 0)
  const carol = () => readMbox(path.join(mx.mailDir, 'carol'))
  const warnings = async () => (await carol()).filter((m) => m.includes('\nAuto-Submitted: auto-generated\n'))
  for (const [i, subject] of ['c1', 'c2', 'c3', 'c4'].entries()) {
    assert.match(lastReply(await send('carol@ours.example', subject), '.') ?? '', /^250 /)
    await waitForCount(async () => (await carol()).filter((m) => m.includes(`\nSubject: ${subject}\n`)), 1)
    if (i < 3) assert.deepEqual(await warnings(), [], `no warning after ${subject}`)
  }
  const [at80] = await waitForCount(warnings, 1)
  assert.match(at80, /^Subject: Your mailbox is 80% full$/m)
  assert.match(at80, /^From: Mail Delivery System <MAILER-DAEMON@mx\.ours\.example>$/m)
  assert.match(at80, /^Return-Path: <>$/m)
  assert.match(at80, /^Content-Transfer-Encoding: 7bit$/m)
  assert.match(lastReply(await send('carol@ours.example', 'c5'), '.') ?? '', /^250 /)
  const both = await waitForCount(warnings, 2)
  assert.match(both[1], /^Subject: Your mailbox is 95% full$/m)
  assert.match(both[1], /^Your mailbox carol@ours\.example\nholds [\d.]+ KiB of its 10 KiB quota \(95% or more\)\.$/m)
  await mx.waitForLog(/mailbox full rcpt=carol@ours\.example/).catch(() => undefined)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  assert.equal((await warnings()).length, 2, 'one notice per threshold')
})

test("Dovecot's quota plugin reads the quota mailctl writes, from the same passwd-file line", async () => {
  const bob = parseUsers(await fs.readFile(path.join(mx.configDir, 'users'), 'utf8')).get('bob@ours.example')!
  // The extra fields exactly as mailctl left them (3K above), and as withQuota writes a larger one.
  for (const [extra, limit] of [
    [bob.rest.slice(5).join(':'), 3 * 1024],
    [
      withQuota(bob, 2 * 1024 ** 3)
        .rest.slice(5)
        .join(':'),
      2 * 1024 ** 3,
    ],
  ] as const) {
    const home = await tempDir('dovecot-home')
    const dovecot = await startDovecot({
      format: 'maildir',
      mailLocation: 'maildir:~/Maildir',
      users: [{ user: 'bob@ours.example', password: 'pw-bob-123', uid: 5000, gid: 5000, home: path.join(home, 'bob'), extra }],
      extraConfig: [
        'mail_plugins = $mail_plugins quota',
        'protocol imap {',
        '  mail_plugins = $mail_plugins imap_quota',
        '}',
        'plugin {',
        '  quota = count:User quota',
        '  quota_vsizes = yes',
        '}',
      ].join('\n'),
    })
    try {
      assert.equal(await dovecot.quotaLimit('bob@ours.example', 'pw-bob-123'), limit, extra)
    } finally {
      await dovecot.close()
      await removeDir(home)
    }
  }
})
