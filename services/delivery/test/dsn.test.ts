import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Envelope } from '@facteur/spool'
import { buildDsn, dsnStatus, RETURN_SIZE_LIMIT } from '../src/dsn.js'

const envelope = (over: Partial<Envelope> = {}): Envelope => ({
  version: 1,
  id: '1A2B3C4D5E6F708192A3B',
  sender: 'alice@ours.example',
  recipients: [
    {
      address: 'bob@remote.example',
      original: 'bob@remote.example',
      status: 'failed',
      attempts: 1,
      lastError: '550 5.1.1 No such user (mx.remote.example[192.0.2.1]:25)',
      doneAt: 0,
    },
    { address: 'carol@ours.example', original: 'team@ours.example', status: 'failed', attempts: 9, lastError: '451 4.2.0 Mailbox locked' },
  ],
  receivedAt: Date.UTC(2026, 0, 2, 3, 4, 5),
  nextAttempt: 0,
  size: 10,
  client: { ip: '127.0.0.1', helo: 'x', tls: false },
  source: 'submission',
  ...over,
})
const message = Buffer.from('From: <alice@ours.example>\r\nSubject: hi\r\n\r\nthe body\r\n')

test('the status of a report follows the reply; a failure after only 4xx replies is 5.4.7 (too old)', () => {
  assert.equal(dsnStatus('failed', '550 5.1.1 No such user'), '5.1.1')
  assert.equal(dsnStatus('failed', '554 5.4.6 loops'), '5.4.6')
  assert.equal(dsnStatus('failed', '451 4.4.1 unreachable'), '5.4.7')
  assert.equal(dsnStatus('failed', '550 No enhanced code'), '5.4.7')
  assert.equal(dsnStatus('delayed', '451 4.7.1 Greylisted'), '4.7.1')
  assert.equal(dsnStatus('delayed', 'garbage'), '4.0.0')
  assert.equal(dsnStatus('delivered', '250 ok'), '2.0.0')
})

test('a failure report is an RFC 3464 multipart/report with one block per failed recipient and the message', () => {
  const env = envelope({ dsn: { envid: 'QQ314159' } })
  const text = buildDsn({
    envelope: env,
    recipients: env.recipients.map((rcpt) => ({ rcpt, action: 'failed' })),
    message,
    to: env.sender,
    hostname: 'mx.ours.example',
    now: new Date(0),
  }).toString()
  assert.match(
    text,
    /^From: Mail Delivery System <MAILER-DAEMON@mx\.ours\.example>\r\nTo: <alice@ours\.example>\r\nSubject: Undelivered Mail Returned to Sender\r\n/,
  )
  assert.match(text, /\r\nAuto-Submitted: auto-replied\r\n/)
  const boundary = /boundary="([^"]+)"/.exec(text)![1]
  const parts = text.split(`--${boundary}`)
  assert.equal(parts.length, 5, 'preamble, three parts, epilogue')
  assert.equal(parts[4], '--\r\n')
  assert.match(parts[2], /^\r\nContent-Type: message\/delivery-status\r\n/)
  assert.match(
    parts[2],
    /\r\nReporting-MTA: dns; mx\.ours\.example\r\nX-Facteur-Queue-ID: 1A2B3C4D5E6F708192A3B\r\nOriginal-Envelope-Id: QQ314159\r\nArrival-Date: Fri, 02 Jan 2026 03:04:05 \+0000\r\n\r\n/,
  )
  assert.match(
    parts[2],
    /Final-Recipient: rfc822; bob@remote\.example\r\nAction: failed\r\nStatus: 5\.1\.1\r\nRemote-MTA: dns; mx\.remote\.example\r\nDiagnostic-Code: smtp; 550 5\.1\.1 No such user\r\n/,
  )
  assert.match(
    parts[2],
    /Final-Recipient: rfc822; carol@ours\.example\r\nOriginal-Recipient: rfc822; team@ours\.example\r\nAction: failed\r\nStatus: 5\.4\.7\r\n/,
  )
  assert.match(
    parts[3],
    /^\r\nContent-Type: message\/rfc822\r\nContent-Description: Undelivered Message\r\n\r\nFrom: <alice@ours\.example>\r\nSubject: hi\r\n\r\nthe body\r\n\r\n$/,
  )
})

test('RET=HDRS, a delay report or a large message return the header only', () => {
  const hdrs = envelope({ dsn: { ret: 'HDRS' } })
  for (const [env, action, msg] of [
    [hdrs, 'failed', message],
    [envelope(), 'delayed', message],
    [envelope(), 'failed', Buffer.concat([message, Buffer.alloc(RETURN_SIZE_LIMIT, 'x')])],
  ] as const) {
    const text = buildDsn({
      envelope: env,
      recipients: [{ rcpt: env.recipients[0], action }],
      message: msg,
      to: env.sender,
      hostname: 'h.example',
    }).toString()
    assert.match(text, /Content-Type: text\/rfc822-headers\r\n/)
    assert.doesNotMatch(text, /the body/)
  }
})

test('8-bit content comes back declared as 8bit', () => {
  const env = envelope()
  const text = buildDsn({
    envelope: env,
    recipients: [{ rcpt: env.recipients[0], action: 'failed' }],
    message: Buffer.from('Subject: caf\xc3\xa9\r\n\r\nb\r\n', 'latin1'),
    to: env.sender,
    hostname: 'h.example',
  })
  assert.match(
    text.toString('latin1'),
    /Content-Type: message\/rfc822\r\nContent-Description: Undelivered Message\r\nContent-Transfer-Encoding: 8bit\r\n/,
  )
})

test('an expired recipient keeps its last host as Remote-MTA and says it gave up (5.4.7)', () => {
  const env = envelope()
  const rcpt = {
    ...env.recipients[0],
    lastError: '451 4.7.1 Try again later (mx.remote.example[192.0.2.1]:25) (gave up: message too old, RFC 3463 4.4.7)',
  }
  const text = buildDsn({
    envelope: env,
    recipients: [{ rcpt, action: 'failed' }],
    message,
    to: env.sender,
    hostname: 'mx.ours.example',
  }).toString()
  assert.match(text, /\r\nStatus: 5\.4\.7\r\nRemote-MTA: dns; mx\.remote\.example\r\n/)
  assert.match(text, /\r\nDiagnostic-Code: smtp; 451 4\.7\.1 Try again later \(gave up: message too old, RFC 3463 4\.4\.7\)\r\n/)
})

test('DSN_LANGUAGE=fr: the Subject (RFC 2047) and the notification in French, then in English; the report itself unchanged', () => {
  // RFC 2047 Q encoding, undone: `_` is a space, `=XX` a byte of UTF-8.
  const decodeWords = (value: string): string =>
    value.replace(/=\?UTF-8\?Q\?([^?]*)\?=\s*/gi, (_, q: string) =>
      Buffer.from(
        q.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (__, h: string) => String.fromCharCode(parseInt(h, 16))),
        'latin1',
      ).toString('utf8'),
    )
  const env = envelope()
  const report = (language: 'en' | 'fr', action: 'failed' | 'delayed') =>
    buildDsn({
      envelope: env,
      recipients: env.recipients.map((rcpt) => ({ rcpt, action })),
      message,
      to: env.sender,
      hostname: 'mx.ours.example',
      willRetryUntil: new Date(Date.UTC(2026, 0, 7)),
      language,
      now: new Date(0),
    }).toString()
  const text = report('fr', 'failed')
  const subject = /^Subject: (.*(?:\r\n[ \t].*)*)\r\n/m.exec(text)![1]
  assert.match(subject, /=\?UTF-8\?Q\?/)
  assert.match(subject, /^[\x20-\x7e\r\n\t]+$/, 'ASCII on the wire')
  assert.equal(decodeWords(subject.replace(/\r\n/g, '')), "Message non remis : retour à l'expéditeur")
  const boundary = /boundary="([^"]+)"/.exec(text)![1]
  const [, human, status] = text.split(`--${boundary}`)
  assert.match(
    human,
    /^\r\nContent-Type: text\/plain; charset=utf-8\r\nContent-Description: Notification\r\nContent-Transfer-Encoding: 8bit\r\n\r\n/,
  )
  assert.match(human, /Ceci est le système de messagerie de l'hôte mx\.ours\.example\.\r\n\r\nJ'ai le regret de vous informer/)
  assert.match(human, /\r\n-{60}\r\n\r\nThis is the mail system at host mx\.ours\.example\.\r\n\r\nI am sorry/)
  assert.match(human, /<bob@remote\.example>: 550 5\.1\.1 No such user\r\n/)
  // The delivery-status part is the RFC's whatever the language.
  const english = report('en', 'failed')
  const englishStatus = english.split(`--${/boundary="([^"]+)"/.exec(english)![1]}`)[2]
  assert.equal(status, englishStatus)
  assert.match(report('fr', 'delayed'), /sera de nouveau tenté jusqu'au Wed, 07 Jan 2026 00:00:00 \+0000 ; vous n'avez pas à le renvoyer\./)
})
