// SRS for forwarding aliases, against the running appliance: a copy an alias forwards to another
// host leaves with an SRS address of SRS_DOMAIN as its reverse-path (so SPF passes there), a
// bounce to that address comes back through the MX and goes on to the sender, a forged or expired
// one is refused; our own users' mail keeps its sender. A real postsrsd reading the appliance's
// own CONFIG_DIR/srs.secret reverses the addresses the appliance sent, and makes addresses the
// appliance reverses: an administrator moving from a postsrsd host copies its secret here.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import fs from 'node:fs/promises'
import { createSrs, parseSrsSecrets } from '@facteur/accounts'
import { startAppliance, type Appliance } from './support/appliance.js'
import { startSmtpSink, type SinkMessage, type SmtpSink } from './support/smtp-sink.js'
import { startPostsrsd, type Postsrsd } from './support/postsrsd.js'
import { swaks, swaksMail, lastReply } from './support/swaks.js'
import { waitForCount } from './support/mbox.js'

let app: Appliance
let sink: SmtpSink
let postsrsd: Postsrsd
let mx: number

before(async () => {
  sink = await startSmtpSink()
  app = await startAppliance({
    services: ['smtp-ingress', 'delivery', 'submission'],
    env: {
      TRANSPORT_MAP: `far.example=[127.0.0.1]:${sink.port}, sender.test=[127.0.0.1]:${sink.port}`,
      SRS_EXCLUDE_DOMAINS: 'partner.test',
      QUEUE_RETRY_MIN: '1s',
    },
    users: { 'bob@ours.example': 'pw-bob' },
    aliases: 'fwd@ours.example: friend@far.example\nteam@ours.example: bob@ours.example, mate@far.example\n',
  })
  mx = app.port('smtp-ingress', 'smtp')
  postsrsd = await startPostsrsd({ secretFile: path.join(app.configDir, 'srs.secret'), domain: 'ours.example' })
})

after(async () => {
  await app?.stop()
  await postsrsd?.close()
  await sink?.close()
})

async function sinkFor(rcpt: string): Promise<SinkMessage> {
  const [m] = await waitForCount(
    async () => (await sink.received()).filter((x) => x.rcptArgs.some((r) => r.startsWith(`<${rcpt}>`))),
    1,
    20_000,
  )
  return m
}

const reversePath = (m: SinkMessage): string => /^<([^>]*)>/.exec(m.mailArgs)?.[1] ?? m.mailArgs

test('a copy an alias forwards leaves with an SRS0 address of SRS_DOMAIN; the local copy of the same message keeps the sender', async () => {
  const r = await swaksMail(mx, { sender: 'alice@sender.test', to: 'fwd@ours.example', subject: 'forwarded' })
  assert.match(lastReply(r, 'RCPT') ?? '', /^250/, r.stdout)
  const m = await sinkFor('friend@far.example')
  assert.match(reversePath(m), /^SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=sender\.test=alice@ours\.example$/)
  // The original sender is still who the message says it is from.
  assert.match(m.message, /^From: alice@sender\.test$/m)

  const both = await swaksMail(mx, { sender: 'carol@sender.test', to: 'team@ours.example', subject: 'to the team' })
  assert.match(lastReply(both, 'RCPT') ?? '', /^250/, both.stdout)
  assert.match(reversePath(await sinkFor('mate@far.example')), /^SRS0=.{4}=..=sender\.test=carol@ours\.example$/)
  const mailbox = path.join(app.mailDir, 'bob')
  const local = await waitForCount(
    async () => (await fs.readFile(mailbox, 'utf8').catch(() => '')).match(/^Return-Path: .*$/gm) ?? [],
    1,
    20_000,
  )
  assert.deepEqual(local, ['Return-Path: <carol@sender.test>'])
})

test('a bounce to that address comes back through the MX and goes to the sender; postsrsd with the same secret reads it alike', async () => {
  await swaksMail(mx, { sender: 'dave@sender.test', to: 'fwd@ours.example', subject: 'will bounce' })
  const [sent] = await waitForCount(
    async () => (await sink.received()).filter((x) => x.mailArgs.includes('=dave@ours.example>')),
    1,
    20_000,
  )
  const srsAddress = reversePath(sent)
  assert.equal(await postsrsd.reverse(srsAddress), 'dave@sender.test')

  const bounce = await swaksMail(mx, { sender: '<>', to: srsAddress, subject: 'Undelivered Mail Returned to Sender' })
  assert.match(lastReply(bounce, 'RCPT') ?? '', /^250/, bounce.stdout)
  const back = await sinkFor('dave@sender.test')
  assert.equal(reversePath(back), '')
  assert.match(back.message, /^Subject: Undelivered Mail Returned to Sender$/m)
})

test('an address postsrsd made with the secret is reversed by the MX, SRS1 included', async () => {
  const made = await postsrsd.forward('erin@sender.test')
  assert.match(made, /^SRS0=.*@ours\.example$/)
  const r = await swaksMail(mx, { sender: '<>', to: made, subject: 'bounce of a postsrsd address' })
  assert.match(lastReply(r, 'RCPT') ?? '', /^250/, r.stdout)
  await sinkFor('erin@sender.test')

  // A second forwarder's SRS1 goes back to the first forwarder's SRS0 address.
  const srs1 = await postsrsd.forward('SRS0=abcd=AB=orig.test=frank@sender.test')
  assert.match(srs1, /^SRS1=/)
  const r1 = await swaksMail(mx, { sender: '<>', to: srs1, subject: 'bounce of an SRS1 address' })
  assert.match(lastReply(r1, 'RCPT') ?? '', /^250/, r1.stdout)
  await sinkFor('SRS0=abcd=AB=orig.test=frank@sender.test')
})

test('an address whose hash holds a / or a + (about 1 hash in 16 holds a /) is reversed alike', async () => {
  const srs = createSrs({
    domain: 'ours.example',
    secrets: parseSrsSecrets(await fs.readFile(path.join(app.configDir, 'srs.secret'), 'utf8')),
  })
  for (const mark of ['/', '+']) {
    let made = ''
    for (let i = 0; i < 2000 && !made.split('=')[1]?.includes(mark); i++) made = srs.forward(`user${i}@sender.test`)
    assert.ok(made.split('=')[1].includes(mark), `a hash with ${mark} among 2000`)
    const r = await swaksMail(mx, { sender: '<>', to: made, subject: `hash with ${mark}` })
    assert.match(lastReply(r, 'RCPT') ?? '', /^250/, `${made}\n${r.stdout}`)
    await sinkFor(made.split('=').slice(4).join('=').replace('@ours.example', '@sender.test'))
  }
})

test('a forged or expired SRS address is refused 550 5.1.1 at RCPT, never relayed', async () => {
  const made = await postsrsd.forward('grace@sender.test')
  const [, hash] = made.split('=')
  const forged = made.replace(`=${hash}=`, hash === 'AAAA' ? '=BBBB=' : '=AAAA=')
  const stale = createSrs({
    domain: 'ours.example',
    secrets: parseSrsSecrets(await fs.readFile(path.join(app.configDir, 'srs.secret'), 'utf8')),
  }).forward('grace@sender.test', Date.now() - 30 * 86_400_000)
  for (const [address, text] of [
    [forged, /^550 5\.1\.1 Invalid SRS address/],
    [stale, /^550 5\.1\.1 Expired SRS address/],
    ['SRS0=xx@ours.example', /^550 5\.1\.1 Invalid SRS address/],
  ] as const) {
    const r = await swaksMail(mx, { sender: '<>', to: address })
    assert.match(lastReply(r, 'RCPT') ?? '', text, `${address}\n${r.stdout}`)
  }
})

test('our own users’ mail forwarded by an alias keeps its sender: SPF of our domain already names us', async () => {
  const r = await swaks([
    ...['--server', `127.0.0.1:${app.port('submission', 'submission')}`, '--tls', '--timeout', '10'],
    ...['--auth', 'PLAIN', '--auth-user', 'bob@ours.example', '--auth-password', 'pw-bob'],
    ...['--from', 'bob@ours.example', '--to', 'fwd@ours.example', '--header', 'Subject: from bob'],
  ])
  assert.match(lastReply(r, 'RCPT') ?? '', /^250/, r.stdout)
  const [m] = await waitForCount(async () => (await sink.received()).filter((x) => x.mailArgs.startsWith('<bob@ours.example>')), 1, 20_000)
  assert.deepEqual(
    m.rcptArgs.map((a) => a.split(' ')[0]),
    ['<friend@far.example>'],
  )
})

test("SRS_EXCLUDE_DOMAINS: a sender of such a domain (its SPF names us) keeps its address when forwarded, as with postsrsd's", async () => {
  const r = await swaksMail(mx, { sender: 'someone@partner.test', to: 'fwd@ours.example', subject: 'excluded' })
  assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
  const [m] = await waitForCount(async () => (await sink.received()).filter((x) => x.message.includes('\nSubject: excluded\n')), 1, 20_000)
  assert.equal(reversePath(m), 'someone@partner.test')
})
