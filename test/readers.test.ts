// Real senders in, real readers out: swaks and nodemailer hand messages to the MX on a port picked
// at run time, a real Postfix relays 8-bit and multi-megabyte messages to it, and a real Dovecot
// reads every mailbox back over IMAP, for MAILBOX_FORMAT=mbox and maildir. The appliance runs as
// root and hands the mailboxes to MAIL_UID/MAIL_GID 5000, the uid Dovecot reads them as.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import nodemailer from 'nodemailer'
import { startAppliance, type Appliance } from './support/appliance.js'
import { startDovecot, type Dovecot } from './support/dovecot.js'
import { startPostfix } from './support/postfix.js'
import { swaks, lastReply } from './support/swaks.js'
import { smtpSession, dataBytes } from './support/smtp-session.js'
import { readMbox, readMaildir, waitForCount } from './support/mbox.js'
import { removeDir, tempDir } from './support/process.js'

const MAIL_UID = 5000
const USERS = { alice: 'pw-alice-1', bob: 'pw-bob-12' }

// 8-bit text, a line starting with "From " (and one already quoted), lines starting with a dot
// (dot-stuffed on the wire, RFC 5321 §4.5.2), a lone dot and an empty line.
const BODY =
  [
    'Bonjour Élodie,',
    'ça marche : déjà reçu, naïve façade, Grüße, 郵便 ✉.',
    'From the start of a line: mboxrd quotes this one.',
    '>From a line quoted already: quoted once more.',
    '.A line starting with a dot.',
    '..and one starting with two.',
    '.',
    'The line above is a lone dot.',
    '',
    'Fin.',
  ].join('\n') + '\n'

type Format = 'mbox' | 'maildir'

const FORMATS: Record<
  Format,
  {
    env(mail: string): Record<string, string>
    location(mail: string): string
    login(local: string): string
    mailbox(mail: string, local: string): string
  }
> = {
  // MAILBOX_PATH left at its default, <MAIL_DIR>/%u: one mbox file per user in a shared directory.
  mbox: {
    env: () => ({}),
    location: (mail) => `mbox:~/mail:INBOX=${mail}/%u`,
    login: (local) => local,
    mailbox: (mail, local) => path.join(mail, local),
  },
  maildir: {
    env: (mail) => ({ MAILBOX_PATH: `${mail}/%d/%u` }),
    location: (mail) => `maildir:${mail}/%d/%n`,
    login: (local) => `${local}@ours.example`,
    mailbox: (mail, local) => path.join(mail, 'ours.example', local),
  },
}

/**
 * What a reader sees of a body. Maildir stores the message as sent. An mbox is mboxrd (RFC 4155
 * App. A): every line matching /^>*From / gets one more '>' so that no body line can start a new
 * message. Dovecot reads mboxes without undoing that (it does not know which variant wrote them),
 * so IMAP clients see `>From ` and `>>From `; only an mboxrd-aware reader (mutt with the mboxrd
 * setting, Python's mailbox with unquoting) would remove one '>'. The quoting is reversible; the
 * mboxo variant (quote `From ` only) is not, since `>From ` and `From ` would read back alike.
 */
function asStored(format: Format, body: string): string {
  return format === 'mbox' ? body.replace(/^(>*From )/gm, '>$1') : body
}

/** The body of an RFC 5322 message (after the first empty line), line ends as LF. */
function bodyOf(message: string): string {
  const text = message.replace(/\r\n/g, '\n')
  const i = text.indexOf('\n\n')
  assert.ok(i >= 0, 'a message with a header/body separator')
  return text.slice(i + 2)
}

const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex')

/** Lines of base64 text (76 characters, as MIME writes them) adding up to about `bytes`. */
function bigBody(bytes: number): string {
  const b64 = randomBytes(Math.ceil((bytes * 3) / 4)).toString('base64')
  return (b64.match(/.{1,76}/g) ?? []).join('\n') + '\n'
}

for (const format of ['mbox', 'maildir'] as const) {
  describe(`MAILBOX_FORMAT=${format}, read back by Dovecot`, () => {
    let mx: Appliance
    let dovecot: Dovecot
    let root: string
    let mail: string
    let port: number
    const setup = FORMATS[format]

    /** Polls Dovecot (bounded) until `local`'s INBOX holds a message with this Subject. */
    async function fetchBySubject(local: keyof typeof USERS, subject: string): Promise<string> {
      const deadline = Date.now() + 20_000
      for (;;) {
        const all = await dovecot.fetchAll(setup.login(local), USERS[local])
        const found = all.filter((m) => m.slice(0, m.indexOf('\r\n\r\n') + 2).includes(`\r\nSubject: ${subject}\r\n`))
        if (found.length === 1) return found[0]
        assert.ok(found.length === 0, `one message "${subject}", not ${found.length}`)
        if (Date.now() > deadline)
          throw new Error(
            `no message "${subject}" for ${local} over IMAP; INBOX holds ${all.length}\n${await fs.readFile(dovecot.logFile, 'utf8').catch(() => '')}`,
          )
        await new Promise((r) => setTimeout(r, 200))
      }
    }

    before(async () => {
      // MAIL_DIR of our own, made before start: Dovecot reads as uid 5000, so every directory on the
      // way must be searchable by it, and an mbox directory must let it create USER.lock (1777).
      root = await tempDir(`readers-${format}`)
      await fs.chmod(root, 0o755)
      mail = path.join(root, 'mail')
      await fs.mkdir(mail)
      await fs.chmod(mail, 0o1777)
      mx = await startAppliance({
        users: { 'alice@ours.example': USERS.alice, 'bob@ours.example': USERS.bob },
        env: {
          MAILBOX_FORMAT: format,
          MAIL_DIR: mail,
          MAIL_UID: String(MAIL_UID),
          MAIL_GID: String(MAIL_UID),
          MESSAGE_SIZE_LIMIT: '50M',
          ...setup.env(mail),
        },
      })
      port = mx.port('smtp-ingress', 'smtp')
      dovecot = await startDovecot({
        format,
        mailLocation: setup.location(mail),
        users: Object.entries(USERS).map(([local, password]) => ({ user: setup.login(local), password, uid: MAIL_UID, gid: MAIL_UID })),
      })
    })
    after(async () => {
      await dovecot?.close()
      await mx?.stop()
      await removeDir(root)
    })

    test('swaks delivers an 8-bit message with "From " and dot lines; Dovecot shows the body as stored', async () => {
      const subject = `swaks ${format}`
      const message = [
        'From: Sender <sender@remote.example>',
        'To: Alice <alice@ours.example>',
        `Subject: ${subject}`,
        `Message-ID: <swaks-${format}@remote.example>`,
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
        '',
        BODY,
      ].join('\n')
      const file = path.join(root, 'swaks-data.eml')
      // swaks ends DATA with CRLF . CRLF after the text it was given: without our last newline, the
      // message on the wire ends with BODY's last line.
      await fs.writeFile(file, message.replace(/\n$/, ''))
      const r = await swaks([
        '--server',
        `127.0.0.1:${port}`,
        '--ehlo',
        'client.remote.example',
        '--from',
        'sender@remote.example',
        '--to',
        'alice@ours.example',
        '--data',
        `@${file}`,
        '--timeout',
        '20',
      ])
      assert.equal(r.code, 0, r.stdout + r.stderr)
      assert.match(lastReply(r, '.') ?? '', /^250 2\.0\.0 Ok: queued as [0-9A-F]{21}$/)
      // swaks dot-stuffed the dot lines on the wire: the server must have removed exactly one dot.
      assert.match(r.stdout, /^ -> \.\.A line starting with a dot\.$/m)
      assert.match(r.stdout, /^ -> \.\.$/m)

      if (format === 'mbox') {
        // The raw file, before Dovecot's first look adds its X-UID/Status headers: mboxrd quoting, LF ends.
        const [raw] = await waitForCount(
          async () => (await readMbox(setup.mailbox(mail, 'alice'))).filter((m) => m.includes(`\nSubject: ${subject}\n`)),
          1,
        )
        const stored = Buffer.from(raw, 'latin1').toString('utf8')
        assert.ok(!stored.includes('\r'), 'LF line ends in the mbox')
        assert.match(stored, /^>From the start of a line/m)
        assert.match(stored, /^>>From a line quoted already/m)
        assert.doesNotMatch(stored, /^From the start/m)
        const st = await fs.stat(setup.mailbox(mail, 'alice'))
        assert.equal(st.uid, MAIL_UID)
        assert.equal(st.mode & 0o777, 0o600)
      } else {
        const newDir = path.join(setup.mailbox(mail, 'alice'), 'new')
        const [file] = await waitForCount(() => fs.readdir(newDir).catch(() => []), 1)
        assert.equal((await fs.stat(path.join(newDir, file))).uid, MAIL_UID)
        assert.equal((await fs.stat(setup.mailbox(mail, 'alice'))).uid, MAIL_UID)
      }

      const seen = await fetchBySubject('alice', subject)
      assert.equal(bodyOf(seen), asStored(format, BODY))
      assert.match(seen, /^Return-Path: <sender@remote\.example>\r\nDelivered-To: alice@ours\.example\r\n/)
    })

    test('nodemailer (STARTTLS) delivers a message it composed; Dovecot shows the body as sent', async () => {
      const subject = `nodemailer ${format}`
      // Composed by nodemailer (quoted-printable for the 8-bit text), then sent as those exact bytes.
      const composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' })
      const composed = (
        await composer.sendMail({
          from: 'sender@remote.example',
          to: 'bob@ours.example',
          subject,
          text: BODY,
          messageId: `<nodemailer-${format}@remote.example>`,
        })
      ).message as unknown as Buffer
      const smtp = nodemailer.createTransport({
        host: '127.0.0.1',
        port,
        secure: false,
        requireTLS: true,
        tls: { rejectUnauthorized: false },
        name: 'client.remote.example',
      })
      try {
        const info = await smtp.sendMail({ envelope: { from: 'sender@remote.example', to: ['bob@ours.example'] }, raw: composed })
        assert.match(info.response, /^250 2\.0\.0 Ok: queued as [0-9A-F]{21}$/)
        assert.deepEqual(info.accepted, ['bob@ours.example'])
      } finally {
        smtp.close()
      }
      const sentBody = bodyOf(composed.toString('utf8'))
      // The composed body still holds the lines under test (quoted-printable leaves them as they are).
      assert.match(sentBody, /^From the start of a line/m)
      assert.match(sentBody, /^\.A line starting with a dot\.$/m)
      assert.match(sentBody, /^\.$/m)
      const seen = await fetchBySubject('bob', subject)
      assert.equal(bodyOf(seen), asStored(format, sentBody))
    })

    test('one message to alice and bob, small and 2 MB: each reads it whole; Maildir copies share one file', async () => {
      const messages = [
        { subject: `both small ${format}`, body: BODY },
        { subject: `both 2MB ${format}`, body: bigBody(2 * 1024 * 1024) },
      ]
      const s = await smtpSession(port, { timeoutMs: 30_000 })
      try {
        assert.match(await s.send('EHLO client.remote.example'), /^250-/)
        for (const m of messages) {
          assert.match(await s.send('MAIL FROM:<sender@remote.example>'), /^250 /)
          for (const to of ['alice', 'bob']) assert.match(await s.send(`RCPT TO:<${to}@ours.example>`), /^250 /)
          assert.match(await s.send('DATA'), /^354 /)
          const message = `From: sender@remote.example\nTo: alice@ours.example, bob@ours.example\nSubject: ${m.subject}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n${m.body}`
          assert.match(await s.sendRaw(dataBytes(message)), /^250 /)
        }
        await s.send('QUIT')
      } finally {
        await s.close()
      }
      for (const m of messages) {
        const seen = await Promise.all((['alice', 'bob'] as const).map((local) => fetchBySubject(local, m.subject)))
        for (const x of seen) {
          assert.equal(sha256(bodyOf(x)), sha256(asStored(format, m.body)), m.subject)
          // A shared file names no recipient (it would show each the other, Bcc included); mbox copies are apart.
          if (format === 'maildir') assert.match(x, /^Return-Path: <sender@remote\.example>\r\nReceived: /)
        }
        if (format === 'mbox')
          for (const [i, local] of (['alice', 'bob'] as const).entries())
            assert.match(seen[i], new RegExp(`^Return-Path: <sender@remote\\.example>\\r\\nDelivered-To: ${local}@ours\\.example\\r\\n`))
      }
      if (format === 'maildir') {
        // Dovecot has moved what it read into cur/: the files, found by their Subject, are one inode each message.
        const files = async (local: string): Promise<string[]> => {
          const dir = setup.mailbox(mail, local)
          const subs = await Promise.all(
            ['cur', 'new'].map(async (sub) => (await fs.readdir(path.join(dir, sub))).map((n) => path.join(dir, sub, n))),
          )
          return subs.flat()
        }
        for (const m of messages) {
          const inodes = new Set<number>()
          for (const local of ['alice', 'bob']) {
            const mine = []
            for (const f of await files(local)) {
              const head = (await fs.readFile(f, 'latin1')).slice(0, 2000)
              if (head.includes(`\nSubject: ${m.subject}\n`)) mine.push(f)
            }
            assert.equal(mine.length, 1, `${local}: ${m.subject}`)
            const st = await fs.stat(mine[0])
            assert.equal(st.nlink, 2)
            inodes.add(st.ino)
          }
          assert.equal(inodes.size, 1, m.subject)
        }
      }
    })

    test('a real Postfix relays an 8-bit message and 5 MB and 20 MB ones into the MX: all arrive intact', async (t) => {
      const ehlo = await smtpSession(port)
      assert.match(await ehlo.send('EHLO postfix.test'), /^250[ -]8BITMIME$/m, 'the MX offers 8BITMIME, so Postfix need not downgrade')
      await ehlo.close()
      const postfix = await startPostfix({
        relayHost: '127.0.0.1',
        relayPort: port,
        extraMain: { message_size_limit: String(60 * 1024 * 1024) },
      })
      t.after(() => postfix.close())
      const messages = [
        {
          subject: `postfix 8bit ${format}`,
          body: BODY,
          params: ' BODY=8BITMIME',
          type: 'text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit',
        },
        { subject: `postfix 5MB ${format}`, body: bigBody(5 * 1024 * 1024), params: '', type: 'text/plain; charset=us-ascii' },
        { subject: `postfix 20MB ${format}`, body: bigBody(20 * 1024 * 1024), params: '', type: 'text/plain; charset=us-ascii' },
      ]
      for (const m of messages) {
        const s = await smtpSession(postfix.port, { timeoutMs: 60_000 })
        try {
          assert.match(await s.send('EHLO client.remote.example'), /8BITMIME/)
          assert.match(await s.send(`MAIL FROM:<sender@remote.example>${m.params}`), /^250 /)
          assert.match(await s.send('RCPT TO:<alice@ours.example>'), /^250 /)
          assert.match(await s.send('DATA'), /^354 /)
          const message = `From: sender@remote.example\nTo: alice@ours.example\nSubject: ${m.subject}\nMIME-Version: 1.0\nContent-Type: ${m.type}\n\n${m.body}`
          assert.match(await s.sendRaw(dataBytes(message)), /^250 /)
          await s.send('QUIT')
        } finally {
          await s.close()
        }
      }
      await postfix.waitForEmptyQueue(60_000)
      // Postfix handed each one to the MX, which answered 250 after committing it.
      const log = await fs.readFile(postfix.logFile, 'utf8')
      assert.equal(
        log.match(new RegExp(`relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${port},.*status=sent \\(250 2\\.0\\.0 Ok: queued as`, 'g'))
          ?.length,
        3,
        log,
      )

      // Delivered once each (the raw mailbox), then read back over IMAP in one session.
      const read = format === 'mbox' ? () => readMbox(setup.mailbox(mail, 'alice')) : () => readMaildir(setup.mailbox(mail, 'alice'))
      const isRelayed = (text: string): boolean => messages.some((m) => text.includes(`\nSubject: ${m.subject}\n`))
      await waitForCount(async () => (await read()).filter(isRelayed), 3, 30_000)
      const stored = await read()
      for (const m of messages) assert.equal(stored.filter((x) => x.includes(`\nSubject: ${m.subject}\n`)).length, 1, m.subject)
      const seen = await dovecot.fetchAll(setup.login('alice'), USERS.alice)
      for (const m of messages) {
        const found = seen.filter((x) => x.includes(`\r\nSubject: ${m.subject}\r\n`))
        assert.equal(found.length, 1, m.subject)
        const body = bodyOf(found[0])
        const expected = asStored(format, m.body)
        assert.equal(body.length, expected.length, m.subject)
        assert.equal(sha256(body), sha256(expected), m.subject)
      }
    })
  })
}
