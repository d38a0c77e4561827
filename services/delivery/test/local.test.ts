// Local delivery's reply reaches the sender in a DSN: it says why without the server's file names,
// which stay in the log's detail. Several Maildir recipients share one file, each with its own outcome.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { loadConfig } from '@facteur/config'
import type { ActiveMessage, RecipientState } from '@facteur/spool'
import { deliverLocal, deliverLocalShared } from '../src/local.js'

/** MAIL_DIR with a symlink `planted` in it to a directory outside, a Maildir config, a small message. */
async function setup(t: { after(fn: () => Promise<void>): void }, planted: string) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-local-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  const mailDir = path.join(dir, 'mail')
  await fs.mkdir(path.join(dir, 'elsewhere'), { recursive: true })
  await fs.mkdir(mailDir)
  await fs.symlink(path.join(dir, 'elsewhere'), path.join(mailDir, planted))
  const config = loadConfig({ MAIL_DOMAIN: 'example.org', MAIL_DIR: mailDir, MAILBOX_FORMAT: 'maildir', CONFIG_DIR: dir })
  const body = Buffer.from('Subject: hi\r\n\r\nhello\r\n')
  const message = {
    envelope: { sender: 'bob@example.net', receivedAt: Date.now() },
    open: () => Readable.from([body]),
    read: () => Promise.resolve(body),
  } as unknown as ActiveMessage
  const rcpt = (local: string) => ({ address: `${local}@example.org`, status: 'pending', attempts: 0 }) as unknown as RecipientState
  return { dir, mailDir, config, message, rcpt, outside: () => fs.readdir(path.join(dir, 'elsewhere')) }
}

test('a refused mailbox (a planted symlink) is failed with a reply that names no path', async (t) => {
  const { dir, mailDir, config, message, rcpt, outside } = await setup(t, 'alice')
  const outcome = await deliverLocal(config, message, rcpt('alice'))
  assert.equal(outcome.status, 'failed')
  assert.match(outcome.reply, /^550 5\.2\.0 mailbox unavailable: /)
  assert.doesNotMatch(outcome.reply, new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
  assert.ok(outcome.detail?.includes(mailDir), outcome.detail)
  assert.deepEqual(await outside(), [])
})

test('several Maildir recipients, one file: each recipient gets its own outcome, in order', async (t) => {
  const { mailDir, config, message, rcpt, outside } = await setup(t, 'mallory')
  const outcomes = await deliverLocalShared(config, message, ['alice', '..', 'mallory', 'carol'].map(rcpt))
  assert.deepEqual(
    outcomes.map((o) => o.reply.slice(0, 9)),
    ['250 2.0.0', '550 5.1.3', '550 5.2.0', '250 2.0.0'],
  )
  const [a] = await fs.readdir(path.join(mailDir, 'alice', 'new'))
  const [c] = await fs.readdir(path.join(mailDir, 'carol', 'new'))
  assert.equal((await fs.stat(path.join(mailDir, 'alice', 'new', a))).ino, (await fs.stat(path.join(mailDir, 'carol', 'new', c))).ino)
  assert.equal(await fs.readFile(path.join(mailDir, 'carol', 'new', c), 'utf8'), 'Return-Path: <bob@example.net>\nSubject: hi\n\nhello\n')
  assert.deepEqual(await outside(), [])
})
