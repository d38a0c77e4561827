// ALWAYS_BCC (Postfix's always_bcc) on the running appliance: every message the MX or submission
// accepts also reaches the archive (an alias of ours, expanded: a mailbox here and an address the
// remote MX refuses), and nothing in the other copies names it; the archive's failed copy causes
// no notice. Then the sender_bcc and recipient_bcc tables (sender_bcc_maps, recipient_bcc_maps),
// written while it runs. Driven by swaks; the remote MX is a scripted smtp-server.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { startAppliance, type Appliance } from './support/appliance.js'
import { startScriptedMx, type ScriptedMx } from './support/scripted-mx.js'
import { swaksMail, swaksSubmit, lastReply } from './support/swaks.js'
import { readMbox, waitForCount } from './support/mbox.js'

let app: Appliance
let mx: ScriptedMx

before(async () => {
  mx = await startScriptedMx({ rcpt: { 'gone@far.example': '550 5.1.1 No such user', 'lost@far.example': '550 5.1.1 No such user' } })
  app = await startAppliance({
    services: ['smtp-ingress', 'delivery', 'submission'],
    env: { ALWAYS_BCC: 'archive@ours.example', TRANSPORT_MAP: `far.example=[127.0.0.1]:${mx.port}`, QUEUE_RETRY_MIN: '1s' },
    users: { 'bob@ours.example': 'pw-bob', 'keeper@ours.example': 'pw-keeper', 'sup@ours.example': 'x', 'legal@ours.example': 'x' },
    aliases: 'archive@ours.example: keeper@ours.example, lost@far.example\n',
  })
})

after(async () => {
  await app?.stop()
  await mx?.close()
})

const mailbox = (user: string) => readMbox(path.join(app.mailDir, user))
const withSubject = async (user: string, subject: string) => (await mailbox(user)).filter((m) => m.includes(`\nSubject: ${subject}\n`))

test('a message to the MX reaches its recipient and the archive; the recipient copy does not name the archive', async () => {
  const r = await swaksMail(app.port('smtp-ingress', 'smtp'), { sender: 'alice@sender.test', to: 'bob@ours.example', subject: 'inbound' })
  assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
  const [kept] = await waitForCount(() => withSubject('keeper', 'inbound'), 1, 20_000)
  assert.match(kept, /^Delivered-To: keeper@ours\.example$/m)
  const [bob] = await waitForCount(() => withSubject('bob', 'inbound'), 1, 20_000)
  // Received's "for" still names the one recipient the client gave (RFC 5321 §4.4).
  assert.match(bob, /^\tfor <bob@ours\.example>;$/m)
  assert.doesNotMatch(bob, /archive|keeper/)
})

test("a user's submitted message reaches the remote recipient and the archive; a failed recipient's notice does not mention the archive", async () => {
  const r = await swaksSubmit(app.port('submission', 'submission'), 'bob@ours.example', 'pw-bob', [
    '--from',
    'bob@ours.example',
    '--to',
    'friend@far.example,gone@far.example',
    '--header',
    'Subject: outbound',
    '--timeout',
    '10',
  ])
  assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
  const [sent] = await waitForCount(async () => mx.messages.filter((m) => m.to.includes('friend@far.example')), 1, 20_000)
  assert.doesNotMatch(sent.data.toString(), /archive|keeper/)
  await waitForCount(() => withSubject('keeper', 'outbound'), 1, 20_000)
  const [notice] = await waitForCount(
    async () => (await mailbox('bob')).filter((m) => m.includes('Final-Recipient: rfc822; gone@far.example')),
    1,
    20_000,
  )
  // One notice lists every recipient that failed in the message: the archive's (NOTIFY=NEVER) is not there.
  await waitForCount(async () => mx.refused.filter((x) => x.to === 'lost@far.example'), 2, 20_000)
  assert.deepEqual(notice.match(/^Final-Recipient: .*$/gm), ['Final-Recipient: rfc822; gone@far.example'])
  assert.doesNotMatch(notice.split('\nContent-Type: message/')[0], /archive|keeper|lost/)
})

test('sender_bcc and recipient_bcc: copies by the sender (address or @domain) and by each recipient as named (its +extension dropped), once each', async () => {
  await fs.writeFile(
    path.join(app.configDir, 'sender_bcc'),
    '@partner.test sup@ours.example\nbob@ours.example sup@ours.example\nbroken line here\n',
  )
  await fs.writeFile(path.join(app.configDir, 'recipient_bcc'), 'bob@ours.example legal@ours.example\n@far.example legal@ours.example\n')
  const mx25 = app.port('smtp-ingress', 'smtp')
  const inbound = await swaksMail(mx25, { sender: 'x@partner.test', to: 'bob+orders@ours.example', subject: 'order 1' })
  assert.match(lastReply(inbound, '.') ?? '', /^250 /, inbound.stdout)
  const other = await swaksMail(mx25, { sender: 'x@elsewhere.test', to: 'keeper@ours.example', subject: 'not copied' })
  assert.match(lastReply(other, '.') ?? '', /^250 /, other.stdout)
  const sent = await swaksSubmit(app.port('submission', 'submission'), 'bob@ours.example', 'pw-bob', [
    '--from',
    'bob@ours.example',
    '--to',
    'friend@far.example,pal@far.example',
    '--header',
    'Subject: from bob',
    '--timeout',
    '10',
  ])
  assert.match(lastReply(sent, '.') ?? '', /^250 /, sent.stdout)

  await waitForCount(() => withSubject('sup', 'order 1'), 1, 20_000)
  await waitForCount(() => withSubject('legal', 'order 1'), 1, 20_000)
  const [bobs] = await waitForCount(() => withSubject('bob', 'order 1'), 1, 20_000)
  assert.doesNotMatch(bobs, /sup@|legal@/)
  await waitForCount(() => withSubject('sup', 'from bob'), 1, 20_000)
  // Two recipients of far.example name the same copy: it is made once.
  await waitForCount(() => withSubject('legal', 'from bob'), 1, 20_000)
  await waitForCount(() => withSubject('keeper', 'not copied'), 1, 20_000) // the recipient (ALWAYS_BCC's copy is the same mailbox)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  assert.equal((await withSubject('legal', 'from bob')).length, 1)
  assert.deepEqual(await withSubject('sup', 'not copied'), [])
  assert.deepEqual(await withSubject('legal', 'not copied'), [])
  assert.match(app.output(), /bcc table line ignored .*sender_bcc line=3/)
})
