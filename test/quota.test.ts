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
    users: { 'bob@ours.example': 'pw-bob-123', 'alice@ours.example': 'pw-alice-123' },
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
  assert.equal((await readMbox(path.join(mx.mailDir, 'bob'))).length, 2)
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
