// Self-test for dovecot.ts: real Dovecot reads an mbox and a Maildir that we wrote by hand.
import assert from 'node:assert/strict'
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { startDovecot } from './dovecot.js'
import { removeDir, tempDir } from './process.js'

const uid = 5000
const gid = 5000

test('Dovecot serves an mbox INBOX in a 1777 spool directory owned by root', async (t) => {
  const root = await tempDir('dovecot-mbox')
  t.after(() => removeDir(root))
  await chmod(root, 0o755)
  const spool = join(root, 'var', 'mail')
  await mkdir(spool, { recursive: true })
  await chmod(spool, 0o1777)
  const mbox = join(spool, 'alice')
  await writeFile(
    mbox,
    'From a@b.example Sat Jan  1 00:00:00 2026\nFrom: a@b.example\nSubject: one\n\nfirst body\n>From here, quoted\n\n' +
      'From c@d.example Sat Jan  1 00:00:01 2026\nFrom: c@d.example\nSubject: two\n\nsecond body\n\n',
    { mode: 0o600 },
  )
  await chown(mbox, uid, gid)

  const dovecot = await startDovecot({
    format: 'mbox',
    mailLocation: `mbox:~/mail:INBOX=${spool}/%u`,
    users: [{ user: 'alice', password: 'secret', uid, gid }],
  })
  t.after(() => dovecot.close())

  const messages = await dovecot.fetchAll('alice', 'secret')
  assert.equal(messages.length, 2)
  assert.match(messages[0], /^From: a@b\.example\r\nSubject: one\r\n\r\nfirst body\r\n>From here, quoted\r\n$/)
  assert.match(messages[1], /Subject: two\r\n\r\nsecond body\r\n$/)
  assert.deepEqual(await dovecot.list('alice', 'secret'), ['INBOX'])
  await assert.rejects(dovecot.fetchAll('alice', 'wrong'))
})

test('Dovecot serves a Maildir at <dir>/%d/%n for user@domain logins', async (t) => {
  const root = await tempDir('dovecot-maildir')
  t.after(() => removeDir(root))
  await chmod(root, 0o755)
  const maildir = join(root, 'ours.example', 'bob')
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(maildir, sub), { recursive: true })
  await writeFile(join(maildir, 'new', '1767225600.M1P1.test'), 'From: a@b.example\nSubject: hi\n\nhello\n')
  for (const path of [join(root, 'ours.example'), maildir, ...['cur', 'new', 'tmp'].map((sub) => join(maildir, sub))]) {
    await chown(path, uid, gid)
  }
  await chown(join(maildir, 'new', '1767225600.M1P1.test'), uid, gid)

  const dovecot = await startDovecot({
    format: 'maildir',
    mailLocation: `maildir:${root}/%d/%n`,
    users: [{ user: 'bob@ours.example', password: 'pw', uid, gid }],
  })
  t.after(() => dovecot.close())

  assert.deepEqual(await dovecot.fetchAll('bob@ours.example', 'pw'), ['From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n'])
})
