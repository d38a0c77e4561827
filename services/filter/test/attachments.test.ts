// Banned attachments (FILTER_BANNED_EXTENSIONS): messages composed by nodemailer, as mail clients
// write them (RFC 2231 and RFC 2047 names, a forwarded message, inline parts), read back by the
// filter's MIME splitter; the verdict's reply.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import MailComposer from 'nodemailer/lib/mail-composer/index.js'
import { loadConfig } from '@facteur/config'
import { bannedAttachments, extensionOf } from '../src/attachments.js'
import { decide } from '../src/verdict.js'

const banned = loadConfig({ MAIL_DOMAIN: 'ours.example' }).filter.bannedExtensions

function compose(attachments: { filename: string; content: string | Buffer; contentType?: string }[], extra = {}): Promise<Buffer> {
  return new MailComposer({
    from: 'alice@remote.example',
    to: 'bob@ours.example',
    subject: 'files',
    text: 'see attached',
    attachments,
    ...extra,
  })
    .compile()
    .build()
}

test('the extension Windows runs: last one, trailing dots and spaces dropped, any path removed', () => {
  assert.equal(extensionOf('invoice.pdf.exe'), 'exe')
  assert.equal(extensionOf('x.EXE. . '), 'exe')
  assert.equal(extensionOf('photo\u202Egpj.exe'), 'exe')
  assert.equal(extensionOf('C:\\temp\\run.bat'), 'bat')
  assert.equal(extensionOf('README'), '')
})

test('finds banned names in any part, encoded or forwarded; leaves documents alone', async () => {
  const plain = await compose([
    { filename: 'report.pdf', content: '%PDF-1.4' },
    { filename: 'invoice.pdf.exe', content: 'MZ' },
  ])
  assert.deepEqual(await bannedAttachments(plain, banned), { banned: ['invoice.pdf.exe'] })

  // Non-ASCII names: nodemailer writes them RFC 2231 (filename*=) and RFC 2047 (name=).
  const encoded = await compose([{ filename: 'facture été 2026.scr', content: 'x' }])
  assert.match(encoded.toString(), /filename\*0\*=utf-8''|filename\*=utf-8''/i)
  assert.deepEqual(await bannedAttachments(encoded, banned), { banned: ['facture été 2026.scr'] })

  // A forwarded message carrying one.
  const forwarded = await compose([{ filename: 'fwd.eml', content: plain, contentType: 'message/rfc822' }])
  assert.deepEqual(await bannedAttachments(forwarded, banned), { banned: ['invoice.pdf.exe'] })

  assert.deepEqual(
    await bannedAttachments(
      await compose([
        { filename: 'photo.jpg', content: 'x' },
        { filename: 'notes.txt', content: 'y' },
      ]),
      banned,
    ),
    { banned: [] },
  )
  assert.deepEqual(await bannedAttachments(plain, new Set()), { banned: [] }, 'FILTER_BANNED_EXTENSIONS=none')
  assert.deepEqual(await bannedAttachments(Buffer.from('Subject: no MIME\r\n\r\nplain text\r\n'), banned), { banned: [] })
})

test('a banned attachment is refused 554 5.7.1 naming it, after a virus and before everything else', () => {
  const envelope = {
    direction: 'inbound' as const,
    ip: '192.0.2.1',
    helo: 'h.example',
    sender: 'a@remote.example',
    recipients: ['postmaster@ours.example'],
  }
  const found = {
    virus: { status: 'clean' as const },
    spam: { status: 'skipped' as const, reason: 'off' as const },
    auth: { check: { status: 'skipped' as const, reason: 'outbound' as const, forged: 0 }, header: '' },
    attachments: { banned: ['a.exe', 'b"q.js', 'c.vbs', 'd.cmd'] },
  }
  const policy = loadConfig({ MAIL_DOMAIN: 'ours.example' }).filter
  const v = decide(envelope, found, policy, 'mx.ours.example')
  assert.equal(v.action, 'reject')
  assert.equal(
    `${v.code} 5.${v.enhanced} ${v.text}`,
    `554 5.7.1 Attachment refused: "a.exe", "b'q.js", "c.vbs" and 1 more (files of that type are not accepted here)`,
  )
  assert.deepEqual(v.checks.banned, found.attachments.banned)
  assert.throws(() => loadConfig({ MAIL_DOMAIN: 'ours.example', FILTER_BANNED_EXTENSIONS: 'exe, .tar.gz' }), /FILTER_BANNED_EXTENSIONS/)
  assert.deepEqual(
    [...loadConfig({ MAIL_DOMAIN: 'ours.example', FILTER_BANNED_EXTENSIONS: 'EXE, .iso' }).filter.bannedExtensions],
    ['exe', 'iso'],
  )
})

test('a MIME bomb the splitter will not take apart (over 1,000 parts) is refused 554 5.6.0, not let through unexamined', async () => {
  const parts = Array.from({ length: 1001 }, (_, i) => `--bb\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`).join('')
  const bomb = Buffer.from(`Subject: many\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="bb"\r\n\r\n${parts}--bb--\r\n`)
  const attachments = await bannedAttachments(bomb, banned)
  assert.deepEqual(attachments, { unexamined: 'Max allowed child nodes exceeded' })
  const v = decide(
    { direction: 'inbound', ip: '192.0.2.1', helo: 'h.example', sender: 'a@remote.example', recipients: ['bob@ours.example'] },
    {
      virus: { status: 'clean' },
      spam: { status: 'skipped', reason: 'off' },
      auth: { check: { status: 'skipped', reason: 'outbound', forged: 0 }, header: '' },
      attachments,
    },
    loadConfig({ MAIL_DOMAIN: 'ours.example' }).filter,
    'mx.ours.example',
  )
  assert.equal(
    `${v.code} 5.${v.enhanced} ${v.text}`,
    '554 5.6.0 Message refused: its MIME structure cannot be examined (Max allowed child nodes exceeded)',
  )
  assert.deepEqual(await bannedAttachments(bomb, new Set()), { banned: [] }, 'FILTER_BANNED_EXTENSIONS=none: not examined, not refused')
})
