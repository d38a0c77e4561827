// Mailbox quotas in delivery, with real mailboxes: MAILBOX_QUOTA and a user's own (the users
// file's Dovecot field), the copy that crosses the limit written, the next deferred 452 4.2.2
// and listed in SPOOL_DIR/full-mailboxes, and the list emptied once the user has made room.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { loadConfig } from '@facteur/config'
import { openAccounts, userQuota, withQuota, parseUsers } from '@facteur/accounts'
import { createLogger } from '@facteur/logging'
import type { ActiveMessage, RecipientState } from '@facteur/spool'
import { deliverLocal, deliverLocalShared, mailboxPathOf } from '../src/local.js'
import { openQuotas } from '../src/quota.js'

test("a user's own quota is Dovecot's extra field; withQuota sets and removes it, other fields kept", () => {
  const [bob, carol, dave] = [
    ...parseUsers(
      [
        'bob@example.org:{PLAIN}x::::::userdb_quota_rule=*:storage=2M',
        'carol@example.org:{PLAIN}x::::::quota_rule=*:storage=0 userdb_mail=maildir:~/Mail',
        'dave@example.org:{PLAIN}x',
      ].join('\n'),
    ).values(),
  ]
  assert.equal(userQuota(bob), 2 * 1024 ** 2)
  assert.equal(userQuota(carol), 0, 'storage=0: no quota for this user')
  assert.equal(userQuota(dave), undefined)
  assert.equal(withQuota(carol, 512 * 1024).rest[5], 'userdb_mail=maildir:~/Mail userdb_quota_rule=*:storage=512k')
  assert.equal(userQuota(withQuota(dave, 3 * 1024 ** 3)), 3 * 1024 ** 3)
  assert.equal(userQuota(withQuota(bob, null)), undefined)
})

for (const format of ['maildir', 'mbox'] as const) {
  test(`${format}: the copy that reaches the quota is written, the next deferred 452 4.2.2 and listed; room made, listed no more`, async (t) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-quota-'))
    t.after(() => fs.rm(dir, { recursive: true, force: true }))
    for (const d of ['mail', 'spool', 'config']) await fs.mkdir(path.join(dir, d))
    // carol has a quota of her own, larger than MAILBOX_QUOTA; dave none at all.
    await fs.writeFile(
      path.join(dir, 'config', 'users'),
      [
        'bob@example.org:{PLAIN}x',
        'carol@example.org:{PLAIN}x::::::userdb_quota_rule=*:storage=100k',
        'dave@example.org:{PLAIN}x::::::userdb_quota_rule=*:storage=0',
      ].join('\n'),
    )
    const config = loadConfig({
      MAIL_DOMAIN: 'example.org',
      MAIL_DIR: path.join(dir, 'mail'),
      SPOOL_DIR: path.join(dir, 'spool'),
      CONFIG_DIR: path.join(dir, 'config'),
      MAILBOX_FORMAT: format,
      MAILBOX_QUOTA: '3K',
    })
    const accounts = openAccounts({
      configDir: config.configDir,
      localDomains: config.localDomains,
      postmaster: config.postmaster,
      delimiter: '+',
    })
    const logger = createLogger({ service: 'delivery', level: 'error', stream: new PassThrough() })
    const quotas = await openQuotas({ config, accounts, logger, mailboxOf: (a) => mailboxPathOf(config, a), freshMs: 60_000 })
    t.after(() => quotas.close())
    await quotas.refresh()
    const body = Buffer.from(`Subject: hi\r\n\r\n${'x'.repeat(2000)}\r\n`)
    const message = {
      envelope: { sender: 'a@example.net', receivedAt: Date.now(), size: body.length },
      open: () => Readable.from([body]),
      read: () => Promise.resolve(body),
    } as unknown as ActiveMessage
    const rcpt = (local: string) => ({ address: `${local}@example.org`, status: 'pending', attempts: 0 }) as unknown as RecipientState
    const send = async (local: string) => (await deliverLocal(config, message, rcpt(local), { quotas })).reply
    const listed = async () => (await fs.readFile(path.join(config.spoolDir, 'full-mailboxes'), 'utf8').catch(() => '')).trim()

    assert.equal(await send('bob'), `250 2.0.0 Delivered to ${format}`)
    assert.equal(await send('bob'), `250 2.0.0 Delivered to ${format}`, 'under the quota before it: written, and now over')
    assert.equal(await send('bob'), '452 4.2.2 Mailbox full')
    assert.equal(await listed(), 'bob@example.org')
    for (let i = 0; i < 4; i++) assert.equal(await send('carol'), `250 2.0.0 Delivered to ${format}`, 'her own quota is larger')
    for (let i = 0; i < 4; i++) assert.equal(await send('dave'), `250 2.0.0 Delivered to ${format}`, 'storage=0: none')
    if (format === 'maildir') {
      const shared = await deliverLocalShared(config, message, [rcpt('bob'), rcpt('carol')], undefined, quotas)
      assert.deepEqual(
        shared.map((o) => o.reply),
        ['452 4.2.2 Mailbox full', '250 2.0.0 Delivered to maildir'],
      )
    }

    // The listeners' view: bob refused at RCPT now.
    const listeners = openAccounts({
      ...{ configDir: config.configDir, localDomains: config.localDomains },
      postmaster: config.postmaster,
      delimiter: '+',
      spoolDir: config.spoolDir,
    })
    await listeners.refresh()
    assert.equal(listeners.full('Bob@example.org'), true)
    assert.equal(listeners.full('carol@example.org'), false)

    // bob empties his mailbox (over IMAP, say): the next sweep takes him off the list.
    await fs.rm(mailboxPathOf(config, 'bob@example.org')!, { recursive: true })
    await quotas.sweep()
    assert.equal(await listed(), '')
    await listeners.refresh()
    assert.equal(listeners.full('bob@example.org'), false)
  })
}
