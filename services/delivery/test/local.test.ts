// Local delivery's reply reaches the sender in a DSN: it says why without the server's file names,
// which stay in the log's detail.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { loadConfig } from '@facteur/config'
import type { ActiveMessage, RecipientState } from '@facteur/spool'
import { deliverLocal } from '../src/local.js'

test('a refused mailbox (a planted symlink) is failed with a reply that names no path', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-local-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  const mailDir = path.join(dir, 'mail')
  await fs.mkdir(path.join(dir, 'elsewhere'), { recursive: true })
  await fs.mkdir(mailDir)
  await fs.symlink(path.join(dir, 'elsewhere'), path.join(mailDir, 'alice'))
  const config = loadConfig({ MAIL_DOMAIN: 'example.org', MAIL_DIR: mailDir, MAILBOX_FORMAT: 'maildir', CONFIG_DIR: dir })
  const body = Buffer.from('Subject: hi\r\n\r\nhello\r\n')
  const message = {
    envelope: { sender: 'bob@example.net', receivedAt: Date.now() },
    open: () => Readable.from([body]),
    read: () => Promise.resolve(body),
  } as unknown as ActiveMessage
  const rcpt = { address: 'alice@example.org', status: 'pending', attempts: 0 } as unknown as RecipientState
  const outcome = await deliverLocal(config, message, rcpt)
  assert.equal(outcome.status, 'failed')
  assert.match(outcome.reply, /^550 5\.2\.0 mailbox unavailable: /)
  assert.doesNotMatch(outcome.reply, new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
  assert.ok(outcome.detail?.includes(mailDir), outcome.detail)
  assert.deepEqual(await fs.readdir(path.join(dir, 'elsewhere')), [])
})
