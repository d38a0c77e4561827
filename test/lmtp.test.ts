// LOCAL_TRANSPORT=lmtp: local copies handed to a real Dovecot over LMTP, which runs the user's
// Sieve script; each recipient's LMTP answer is its outcome; a Dovecot that does not answer
// defers the mail and fails delivery's /healthz naming it.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { startAppliance, type Appliance } from './support/appliance.js'
import { startDovecot, type Dovecot } from './support/dovecot.js'
import { freePort } from './support/ports.js'
import { removeDir, tempDir } from './support/process.js'
import { swaksMail, lastReply } from './support/swaks.js'

const UID = 5000
let mx: Appliance
let dovecot: Dovecot
let root: string
let lmtpPort: number

before(async () => {
  root = await tempDir('lmtp')
  await fs.chmod(root, 0o755)
  // bob's Sieve script files invoices into a folder of their own.
  const home = path.join(root, 'bob')
  await fs.mkdir(home, { mode: 0o700 })
  await fs.writeFile(
    path.join(home, '.dovecot.sieve'),
    'require ["fileinto", "mailbox"];\nif header :contains "subject" "invoice" { fileinto :create "Invoices"; stop; }\n',
  )
  for (const p of [home, path.join(home, '.dovecot.sieve')]) await fs.chown(p, UID, UID)
  lmtpPort = await freePort()
  dovecot = await startDovecot({
    format: 'maildir',
    mailLocation: 'maildir:~/Maildir',
    // carol is ours (our users file) but not Dovecot's: its LMTP refuses her.
    users: [{ user: 'bob@ours.example', password: 'pw-bob', uid: UID, gid: UID, home }],
    extraConfig: [
      'protocols = imap lmtp',
      'service lmtp {',
      '  inet_listener lmtp {',
      '    address = 127.0.0.1',
      `    port = ${lmtpPort}`,
      '  }',
      '}',
      'protocol lmtp {',
      '  mail_plugins = $mail_plugins sieve',
      '}',
      'plugin {',
      '  sieve = file:~/sieve;active=~/.dovecot.sieve',
      '}',
    ].join('\n'),
  })
  mx = await startAppliance({
    users: { 'bob@ours.example': 'pw-bob', 'carol@ours.example': 'pw-carol' },
    env: { LOCAL_TRANSPORT: `lmtp:127.0.0.1:${lmtpPort}` },
  })
})
after(async () => {
  await mx?.stop()
  await dovecot?.close()
  if (root) await removeDir(root)
})

const send = (to: string[], subject: string) => swaksMail(mx.port('smtp-ingress', 'smtp'), { sender: 'sender@remote.example', to, subject })

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined) return v
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}:\n${mx.output()}`)
}

test("Dovecot takes the copy over LMTP and runs the user's Sieve script; Dovecot adds Delivered-To", async () => {
  assert.match(lastReply(await send(['bob@ours.example'], 'hello'), '.') ?? '', /^250 /)
  assert.match(lastReply(await send(['bob@ours.example'], 'your invoice'), '.') ?? '', /^250 /)
  const inbox = await waitFor('the INBOX copy', async () => {
    const got = await dovecot.fetchAll('bob@ours.example', 'pw-bob')
    return got.length ? got : undefined
  })
  assert.equal(inbox.length, 1)
  assert.match(inbox[0], /^Subject: hello\r?$/m)
  assert.match(inbox[0], /^Delivered-To: bob@ours\.example\r?$/m)
  assert.match(inbox[0], /^Return-Path: <sender@remote\.example>\r?$/m)
  const filed = await waitFor('the Sieve-filed copy', async () => {
    const got = await dovecot.fetchAll('bob@ours.example', 'pw-bob', 'Invoices')
    return got.length ? got : undefined
  })
  assert.match(filed[0], /^Subject: your invoice\r?$/m)
  await mx.waitForLog(/delivered .*rcpt=bob@ours\.example reply="250 2\.0\.0 Delivered by LMTP \(127\.0\.0\.1:\d+\)"/)
})

test('each recipient gets its own LMTP answer: one delivered, one refused by Dovecot (failed, bounced)', async () => {
  assert.match(lastReply(await send(['bob@ours.example', 'carol@ours.example'], 'to both'), '.') ?? '', /^250 /)
  await mx.waitForLog(/failed .*rcpt=carol@ours\.example reply="550 5\.1\.1 /)
  await waitFor('bob’s copy', async () => {
    const got = await dovecot.fetchAll('bob@ours.example', 'pw-bob')
    return got.some((m) => /^Subject: to both\r?$/m.test(m)) ? true : undefined
  })
})

test('a Dovecot that does not answer: the copy is deferred, and delivery /healthz fails naming the LMTP server', async () => {
  const health = `http://127.0.0.1:${mx.port('delivery', 'health')}/healthz`
  assert.equal((await fetch(health)).status, 200)
  await dovecot.close()
  assert.match(lastReply(await send(['bob@ours.example'], 'while down'), '.') ?? '', /^250 /)
  await mx.waitForLog(/deferred .*rcpt=bob@ours\.example reply="451 4\.4\.1 LMTP server 127\.0\.0\.1:\d+: /)
  const res = await fetch(health)
  assert.equal(res.status, 503)
  const body = (await res.json()) as { checks: Record<string, { status: string; detail?: string }> }
  assert.equal(body.checks.lmtp.status, 'fail')
  assert.match(body.checks.lmtp.detail ?? '', /^LMTP server 127\.0\.0\.1:\d+ unreachable: /)
})
