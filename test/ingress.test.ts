// The MX listener's rules, each driven through a real SMTP session against the running appliance.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import net from 'node:net'
import tls from 'node:tls'
import { openSpool } from '@facteur/spool'
import { startAppliance, type Appliance } from './support/appliance.js'
import { smtpSession, sendMail } from './support/smtp-session.js'
import { swaks, lastReply } from './support/swaks.js'
import { readMbox, waitForCount } from './support/mbox.js'
import { prng } from './support/prng.js'

let mx: Appliance
let port: number

before(async () => {
  mx = await startAppliance({
    users: { 'alice@ours.example': 'pw-alice', 'bob@ours.example': 'pw-bob', 'carol@second.example': 'pw-carol' },
    aliases: [
      'team@ours.example: alice@ours.example, bob@ours.example',
      'friends@ours.example: team@ours.example, alice@ours.example, pal@remote.example',
      'loop1@ours.example: loop2@ours.example',
      'loop2@ours.example: loop1@ours.example',
    ].join('\n'),
    env: { LOCAL_DOMAINS: 'ours.example,second.example', MESSAGE_SIZE_LIMIT: '64K', MAX_RECIPIENTS: '3' },
  })
  port = mx.port('smtp-ingress', 'smtp')
})
after(() => mx.stop())

const mbox = (user: string, domain = 'ours.example'): string => path.join(mx.mailDir, domain, user)

async function rcpt(address: string, from = 'sender@remote.example'): Promise<string> {
  const s = await smtpSession(port)
  try {
    await s.send('EHLO client.remote.example')
    await s.send(`MAIL FROM:<${from}>`)
    return await s.send(`RCPT TO:<${address}>`)
  } finally {
    await s.close()
  }
}

test('refuses every classic relay trick, from any sender: 554 5.7.1, or 501 where the syntax is already wrong', async () => {
  const expected: Record<string, RegExp> = {
    'user@other.example': /^554 5\.7\.1 /,
    'USER@OTHER.EXAMPLE': /^554 5\.7\.1 /,
    'user%other.example@ours.example': /^554 5\.7\.1 /,
    '@ours.example:user@other.example': /^554 5\.7\.1 /,
    'other.example!user@ours.example': /^554 5\.7\.1 /,
    'user@[127.0.0.1]': /^554 5\.7\.1 /,
    'alice@[127.0.0.1]': /^554 5\.7\.1 /,
    // smtp-server's address parser refuses these before our policy sees them
    '"user@other.example"@ours.example': /^501 /,
    'user@other.example@ours.example': /^501 /,
    'user@other.example.': /^501 /,
  }
  for (const [address, reply] of Object.entries(expected)) {
    for (const from of ['sender@remote.example', '', 'alice@ours.example'])
      assert.match(await rcpt(address, from), reply, `${address} from <${from}>`)
  }
})

test('refuses local parts that could leave the mailbox directory with 553 5.1.3', async () => {
  for (const address of ['a/b@ours.example', 'etc/passwd@ours.example', 'al\\ice@ours.example'])
    assert.match(await rcpt(address), /^553 5\.1\.3 /, address)
  // smtp-server's parser already refuses dots in the wrong places
  for (const address of ['../etc@ours.example', 'a..b@ours.example', '.alice@ours.example'])
    assert.match(await rcpt(address), /^5\d\d /, address)
  const s = await smtpSession(port)
  await s.send('EHLO c')
  await s.send('MAIL FROM:<x@remote.example>')
  assert.match(await s.sendRaw(Buffer.from('RCPT TO:<al\x01ice@ours.example>\r\n', 'latin1')), /^5\d\d /)
  assert.match(await s.sendRaw(Buffer.from('RCPT TO:<al\x00ice@ours.example>\r\n', 'latin1')), /^5\d\d /)
  await s.close()
})

test('refuses unknown local users with 550 5.1.1 and matches known ones whatever the case or sub-address', async () => {
  assert.equal(await rcpt('nobody@ours.example'), '550 5.1.1 No such user here')
  assert.match(await rcpt('Alice@OURS.example'), /^250 /)
  assert.match(await rcpt('alice+lists@ours.example'), /^250 /)
  assert.match(await rcpt('carol@second.example'), /^250 /)
  assert.equal(await rcpt('alice@second.example'), '550 5.1.1 No such user here')
})

test('postmaster exists in every local domain, also without a domain (RFC 5321 §4.5.1)', async () => {
  assert.match(await rcpt('postmaster@second.example'), /^250 /)
  assert.match(await rcpt('Postmaster'), /^250 /)
})

test('does not advertise SMTPUTF8 and refuses non-ASCII addresses', async () => {
  const s = await smtpSession(port)
  const ehlo = await s.send('EHLO c')
  assert.doesNotMatch(ehlo, /SMTPUTF8/)
  assert.match(ehlo, /STARTTLS/)
  await s.send('MAIL FROM:<x@remote.example>')
  assert.match(await s.send('RCPT TO:<élodie@ours.example>'), /^553 5\.6\.7 /)
  await s.close()
})

test('refuses a message over MESSAGE_SIZE_LIMIT with 552 5.3.4 and queues nothing', async () => {
  const body = 'x'.repeat(76) + '\r\n'
  const r = await sendMail(port, { from: 'a@remote.example', to: ['bob@ours.example'], data: `Subject: big\r\n\r\n${body.repeat(1200)}` })
  assert.match(r.message ?? '', /^552 5\.3\.4 /)
  assert.deepEqual(await fs.readdir(path.join(mx.spoolDir, 'queue')), [])
})

test('answers 452 4.5.3 past MAX_RECIPIENTS', async () => {
  const r = await sendMail(port, {
    from: 'a@remote.example',
    to: ['alice@ours.example', 'bob@ours.example', 'postmaster@ours.example', 'team@ours.example'],
    data: 'Subject: many\r\n\r\nhi\r\n',
  })
  assert.deepEqual(
    r.rcpt.map((x) => x.slice(0, 9)),
    ['250 2.1.5', '250 2.1.5', '250 2.1.5', '452 4.5.3'],
  )
  assert.match(r.message ?? '', /^250 2\.0\.0 Ok: queued as /)
})

test('refuses bare LF and bare CR in DATA (SMTP smuggling) and creates no second message', async () => {
  for (const raw of [
    'Subject: x\r\n\r\nline\n.\nMAIL FROM:<evil@remote.example>\r\n',
    'Subject: x\r\n\r\nline\r.\rmore\r\n',
    'Subject: x\nFrom: y\r\n\r\nz\r\n',
  ]) {
    const s = await smtpSession(port)
    await s.send('EHLO c')
    await s.send('MAIL FROM:<a@remote.example>')
    await s.send('RCPT TO:<bob@ours.example>')
    await s.send('DATA')
    assert.match(await s.sendRaw(raw + '.\r\n'), /^550 5\.5\.2 /, JSON.stringify(raw))
    await s.close()
  }
  assert.deepEqual(await fs.readdir(path.join(mx.spoolDir, 'queue')), [])
})

test('takes whole transactions from clients that wait for no reply, not even 354, however their bytes are cut', async () => {
  // RFC 2920 §3.1 has the client wait for 354 before the message; some bulk senders do not. The
  // bytes after DATA are then the message, already read: each transaction must still get its
  // replies in order, be queued whole, and the session end at QUIT, never wait for a deadline.
  const rand = prng(2920)
  const before = (await readMbox(mbox('bob'))).length
  const lines = new Map<string, number>()
  for (let k = 0; k < 30; k++) {
    const n = 1 + Math.floor(rand() * 3)
    let script = 'EHLO client.remote.example\r\n'
    for (let i = 0; i < n; i++) {
      const count = Math.floor(rand() * 3000)
      lines.set(`unwaited ${k}.${i}`, count)
      script += `MAIL FROM:<a@remote.example>\r\nRCPT TO:<bob@ours.example>\r\nDATA\r\nSubject: unwaited ${k}.${i}\r\n\r\n${'line\r\n'.repeat(count)}.\r\n`
    }
    const bytes = Buffer.from(script + 'QUIT\r\n')
    const s = await smtpSession(port)
    // Cuts of 1-64 bytes or up to 20 KB (a whole next transaction in one read), now and then a pause.
    for (let at = 0; at < bytes.length;) {
      const end = Math.min(bytes.length, at + 1 + Math.floor(rand() * (rand() < 0.3 ? 64 : 20_000)))
      s.write(bytes.subarray(at, end))
      at = end
      if (rand() < 0.2) await new Promise((r) => setTimeout(r, Math.floor(rand() * 5)))
    }
    const codes: string[] = []
    for (let i = 0; i < 2 + 4 * n; i++) codes.push((await s.read()).slice(0, 3))
    assert.deepEqual(codes, ['250', ...Array<string[]>(n).fill(['250', '250', '354', '250']).flat(), '221'], `session ${k}`)
    // The server hangs up after 221 (a session still open would time the read out after 10 s).
    await assert.rejects(s.read(), /connection closed by server/, `session ${k}`)
  }
  const got = (await waitForCount(() => readMbox(mbox('bob')), before + lines.size)).slice(before)
  assert.equal(got.length, lines.size)
  for (const m of got) {
    const subject = /^Subject: (unwaited \S+)$/m.exec(m)?.[1] ?? ''
    assert.equal(m.split('\n').filter((l) => l === 'line').length, lines.get(subject), subject)
    lines.delete(subject)
  }
  assert.equal(lines.size, 0)
})

test('refuses loops: more than 50 Received fields, or a Delivered-To naming the recipient', async () => {
  const hops = Array.from(
    { length: 51 },
    (_, i) => `Received: from h${i}.example by h${i + 1}.example; Sat, 28 Nov 2026 00:00:00 +0000\r\n`,
  ).join('')
  const r1 = await sendMail(port, { from: 'a@remote.example', to: ['bob@ours.example'], data: `${hops}Subject: loop\r\n\r\nx\r\n` })
  assert.match(r1.message ?? '', /^554 5\.4\.6 /)
  const r2 = await sendMail(port, {
    from: 'a@remote.example',
    to: ['bob@ours.example'],
    data: 'Delivered-To: Bob@ours.example\r\nSubject: loop\r\n\r\nx\r\n',
  })
  assert.match(r2.message ?? '', /^554 5\.4\.6 /)
  const r3 = await sendMail(port, {
    from: 'a@remote.example',
    to: ['bob@ours.example'],
    data: `${hops.split('\r\n').slice(0, 50).join('\r\n')}\r\nSubject: ok\r\n\r\nx\r\n`,
  })
  assert.match(r3.message ?? '', /^250 /)
})

test('removes the headers mailbox readers trust, adds Received, Return-Path and Delivered-To', async () => {
  const forged = [
    'Return-Path: <forged@evil.example>',
    'Delivered-To: someone@else.example',
    'Content-Length: 3',
    'Status: RO',
    'X-Status: F',
    'X-UID: 1',
    'X-IMAP: 1 1',
    'X-IMAPbase: 1 1',
    'X-Keywords: $Forged',
  ]
  const r = await sendMail(port, {
    from: 'null-test@remote.example',
    to: ['carol@second.example'],
    data: `${forged.join('\r\n')}\r\nSubject: strip me\r\n\r\nbody\r\n`,
  })
  assert.match(r.message ?? '', /^250 2\.0\.0 Ok: queued as ([0-9A-F]{21})$/)
  const id = /queued as (\w+)/.exec(r.message!)![1]
  const [m] = await waitForCount(() => readMbox(mbox('carol', 'second.example')), 1)
  for (const f of forged) assert.ok(!m.includes(f), `${f} should be gone`)
  assert.match(
    m,
    /^Return-Path: <null-test@remote\.example>\nDelivered-To: carol@second\.example\nReceived: from c(lient\.test)? \(\[127\.0\.0\.1\]\)\n\tby mx\.ours\.example \(Facteur\) with ESMTP id /,
  )
  assert.ok(m.includes(`id ${id}`))
  assert.ok(m.includes('Subject: strip me\n\nbody'))
})

test('accepts the null sender for a local user (bounces must arrive)', async () => {
  const r = await sendMail(port, { from: '', to: ['bob+bounces@ours.example'], data: 'Subject: bounce\r\n\r\nDelivery failed\r\n' })
  assert.match(r.message ?? '', /^250 /)
  const msgs = await waitForCount(async () => (await readMbox(mbox('bob'))).filter((m) => m.includes('Subject: bounce')), 1)
  assert.match(msgs[0], /^Return-Path: <>\n/)
})

test('expands aliases recursively, delivering once per final mailbox, and refuses alias cycles', async () => {
  assert.equal(await rcpt('loop1@ours.example'), '550 5.4.6 Alias loop detected')
  const before = (await readMbox(mbox('alice'))).length
  const r = await sendMail(port, {
    from: 'a@remote.example',
    to: ['friends@ours.example', 'team@ours.example', 'alice@ours.example'],
    data: 'Subject: once\r\n\r\nx\r\n',
  })
  assert.match(r.message ?? '', /^250 /)
  const id = /queued as (\w+)/.exec(r.message!)![1]
  await waitForCount(async () => (await readMbox(mbox('alice'))).filter((m) => m.includes(id)), 1)
  await new Promise((res) => setTimeout(res, 500))
  assert.equal((await readMbox(mbox('alice'))).filter((m) => m.includes(id)).length, 1)
  assert.equal((await readMbox(mbox('alice'))).length, before + 1)
  // the external target waits in the queue for outbound delivery
  const env = (await (await openSpool(mx.spoolDir)).list()).find((e) => e.id === id)!.envelope
  assert.deepEqual(env.recipients.map((r: { address: string }) => r.address).sort(), [
    'alice@ours.example',
    'bob@ours.example',
    'pal@remote.example',
  ])
})

test('picks up a users file replaced by rename without a restart', async () => {
  assert.equal(await rcpt('dave@ours.example'), '550 5.1.1 No such user here')
  const users = path.join(mx.configDir, 'users')
  await fs.writeFile(`${users}.new`, (await fs.readFile(users, 'utf8')) + 'dave@ours.example:{PLAIN}pw\n')
  await fs.rename(`${users}.new`, users)
  assert.match(await rcpt('dave@ours.example'), /^250 /)
  const aliases = path.join(mx.configDir, 'aliases')
  await fs.writeFile(`${aliases}.new`, 'sales@ours.example: dave@ours.example\n')
  await fs.rename(`${aliases}.new`, aliases)
  assert.match(await rcpt('sales@ours.example'), /^250 /)
})

test('picks up an aliases file rewritten in place (same inode), also at the same size', async () => {
  const aliases = path.join(mx.configDir, 'aliases')
  const ino = (await fs.stat(aliases)).ino
  assert.equal(await rcpt('support@ours.example'), '550 5.1.1 No such user here')
  // writeFile truncates and rewrites the file it opened, as an editor saving in place does.
  await fs.writeFile(aliases, 'sales@ours.example: dave@ours.example\nsupport@ours.example: dave@ours.example\n')
  assert.equal((await fs.stat(aliases)).ino, ino, 'the same file, changed in place')
  assert.match(await rcpt('support@ours.example'), /^250 /)
  // Same length, other content: the modification time tells the change.
  await new Promise((r) => setTimeout(r, 20))
  const size = (await fs.stat(aliases)).size
  await fs.writeFile(aliases, 'sales@ours.example: dave@ours.example\nhelpers@ours.example: dave@ours.example\n')
  assert.equal((await fs.stat(aliases)).ino, ino)
  assert.equal((await fs.stat(aliases)).size, size)
  assert.equal(await rcpt('support@ours.example'), '550 5.1.1 No such user here')
  assert.match(await rcpt('helpers@ours.example'), /^250 /)
})

test('offers STARTTLS with a self-signed certificate made in CONFIG_DIR, not the library demo key', async () => {
  const s = await smtpSession(port)
  await s.send('EHLO c')
  assert.match(await s.startTls({ rejectUnauthorized: false }), /^220 /)
  await s.close()
  const cert = await fs.readFile(path.join(mx.configDir, 'tls', 'selfsigned.crt'), 'utf8')
  const served = await new Promise<tls.PeerCertificate>((resolve, reject) => {
    void smtpSession(port).then(async (s2) => {
      await s2.send('EHLO c')
      await s2.send('STARTTLS')
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const sock = tls.connect({ socket: (s2 as any).socket ?? undefined, rejectUnauthorized: false, host: '127.0.0.1', port }, () => {
        resolve(sock.getPeerCertificate())
        sock.destroy()
      })
      sock.on('error', reject)
    }, reject)
  }).catch(() => null)
  const x509 = new (await import('node:crypto')).X509Certificate(cert)
  assert.match(x509.subject, /CN=mx\.ours\.example/)
  if (served) assert.equal(served.fingerprint256, x509.fingerprint256)
  const r = await swaks([
    '--server',
    `127.0.0.1:${port}`,
    '--tls',
    '--from',
    'a@remote.example',
    '--to',
    'bob@ours.example',
    '--timeout',
    '10',
  ])
  assert.equal(r.code, 0, r.stdout)
  assert.match(lastReply(r.stdout, '.') ?? '', /^250 /)
})

test('refuses a client that talks before the greeting with 421 (early talker), and greets one that waits', async () => {
  const firstLine = (early: boolean): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        if (early) socket.write('EHLO early.example\r\n')
      })
      let text = ''
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1')
        if (text.includes('\r\n')) {
          socket.destroy()
          resolve(text.slice(0, text.indexOf('\r\n')))
        }
      })
      socket.on('error', reject)
      socket.setTimeout(5000, () => socket.destroy(new Error('no reply')))
    })
  assert.match(await firstLine(true), /^421 .*You talk too soon/)
  assert.match(await firstLine(false), /^220 mx\.ours\.example /)
})
