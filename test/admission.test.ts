// SMTP_MAX_TRANSACTIONS against the running MX: past the limit a MAIL FROM is answered once a
// message in progress is queued, or after the longest wait (5 s) when the place is held longer;
// nothing is refused. Each 127.0.0.0/8 address is a client of its own.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { startAppliance, type Appliance } from './support/appliance.js'
import { smtpSession, type SmtpSession } from './support/smtp-session.js'

let app: Appliance
let port: number

before(async () => {
  app = await startAppliance({ users: { 'bob@ours.example': 'pw-bob' }, env: { SMTP_MAX_TRANSACTIONS: '1' } })
  port = app.port('smtp-ingress', 'smtp')
})
after(() => app?.stop())

async function client(ip: string): Promise<SmtpSession> {
  const s = await smtpSession(port, { localAddress: ip, timeoutMs: 15_000 })
  assert.match(await s.send('EHLO client.example'), /^250/)
  return s
}

/** The reply, or 'no reply' when none came within ms. */
const within = (reply: Promise<string>, ms: number): Promise<string> => Promise.race([reply, sleep(ms).then(() => 'no reply')])

test('a second transaction waits at MAIL FROM until the first is queued, then goes on', async () => {
  const a = await client('127.0.0.2')
  const b = await client('127.0.0.3')
  assert.match(await a.send('MAIL FROM:<alice@remote.example>'), /^250/)
  const bMail = b.send('MAIL FROM:<carol@remote.example>')
  assert.equal(await within(bMail, 1000), 'no reply', 'the place is taken')
  assert.match(await a.send('RCPT TO:<bob@ours.example>'), /^250/)
  assert.match(await a.send('DATA'), /^354/)
  assert.match(await a.sendRaw('Subject: first\r\n\r\nfirst\r\n.\r\n'), /^250 2\.0\.0 Ok: queued/)
  assert.match(await within(bMail, 2000), /^250/, 'answered once the first is queued')
  assert.match(await b.send('RCPT TO:<bob@ours.example>'), /^250/)
  assert.match(await b.send('DATA'), /^354/)
  assert.match(await b.sendRaw('Subject: second\r\n\r\nsecond\r\n.\r\n'), /^250 2\.0\.0 Ok: queued/)
  await a.close()
  await b.close()
})

test('a place held for long (an idle transaction) delays the others by the longest wait at most', async () => {
  const idle = await client('127.0.0.4')
  assert.match(await idle.send('MAIL FROM:<slow@remote.example>'), /^250/)
  const other = await client('127.0.0.5')
  const started = Date.now()
  const mail = other.send('MAIL FROM:<dave@remote.example>')
  assert.equal(await within(mail, 1000), 'no reply')
  assert.match(await mail, /^250/)
  assert.ok(Date.now() - started < 10_000)
  assert.match(await other.send('RCPT TO:<bob@ours.example>'), /^250/)
  assert.match(await other.send('DATA'), /^354/)
  assert.match(await other.sendRaw('Subject: past the idle one\r\n\r\nhello\r\n.\r\n'), /^250 2\.0\.0 Ok: queued/)
  // The idle client leaving frees its place: the next transaction begins at once.
  await idle.close()
  await sleep(200)
  const next = await client('127.0.0.6')
  assert.match(await within(next.send('MAIL FROM:<erin@remote.example>'), 1000), /^250/)
  await other.close()
  await next.close()
})
