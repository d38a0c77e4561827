// SMTP_MAX_TRANSACTIONS against the running MX: past the limit the reply to a new message's first
// accepted RCPT TO comes once a message in progress is queued, or after the longest wait (5 s)
// when the place is held longer; nothing is refused, and a session whose recipients are all
// refused holds no place. Each 127.0.0.0/8 address is a client of its own.
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

/** A session from `ip` with its MAIL FROM accepted. */
async function client(ip: string, sender: string): Promise<SmtpSession> {
  const s = await smtpSession(port, { localAddress: ip, timeoutMs: 15_000 })
  assert.match(await s.send('EHLO client.example'), /^250/)
  assert.match(await s.send(`MAIL FROM:<${sender}>`), /^250/)
  return s
}

async function finish(s: SmtpSession, subject: string): Promise<void> {
  assert.match(await s.send('DATA'), /^354/)
  assert.match(await s.sendRaw(`Subject: ${subject}\r\n\r\nhello\r\n.\r\n`), /^250 2\.0\.0 Ok: queued/)
}

/** The reply, or 'no reply' when none came within ms. */
const within = (reply: Promise<string>, ms: number): Promise<string> => Promise.race([reply, sleep(ms).then(() => 'no reply')])

test('a second message waits at its first RCPT TO until the first is queued, then goes on', async () => {
  const a = await client('127.0.0.2', 'alice@remote.example')
  const b = await client('127.0.0.3', 'carol@remote.example')
  assert.match(await a.send('RCPT TO:<bob@ours.example>'), /^250/)
  const bRcpt = b.send('RCPT TO:<bob@ours.example>')
  assert.equal(await within(bRcpt, 1000), 'no reply', 'the place is taken')
  await finish(a, 'first')
  assert.match(await within(bRcpt, 2000), /^250/, 'answered once the first is queued')
  await finish(b, 'second')
  await a.close()
  await b.close()
})

test('a place held for long (an idle transaction) delays the others by the longest wait at most', async () => {
  const idle = await client('127.0.0.4', 'slow@remote.example')
  assert.match(await idle.send('RCPT TO:<bob@ours.example>'), /^250/)
  const other = await client('127.0.0.5', 'dave@remote.example')
  const started = Date.now()
  const rcpt = other.send('RCPT TO:<bob@ours.example>')
  assert.equal(await within(rcpt, 1000), 'no reply')
  assert.match(await rcpt, /^250/)
  assert.ok(Date.now() - started < 10_000)
  await finish(other, 'past the idle one')
  // The idle client leaving frees its place: the next message goes on at once.
  await idle.close()
  await sleep(200)
  const next = await client('127.0.0.6', 'erin@remote.example')
  assert.match(await within(next.send('RCPT TO:<bob@ours.example>'), 1000), /^250/)
  await other.close()
  await next.close()
})

test('a session whose recipients are all refused holds no place', async () => {
  const guesser = await client('127.0.0.7', 'frank@remote.example')
  for (const name of ['nobody', 'noone', 'admin1']) assert.match(await guesser.send(`RCPT TO:<${name}@ours.example>`), /^550 5\.1\.1/)
  const b = await client('127.0.0.8', 'gina@remote.example')
  assert.match(await within(b.send('RCPT TO:<bob@ours.example>'), 1000), /^250/)
  await finish(b, 'not held up by the guesser')
  await guesser.close()
  await b.close()
})
