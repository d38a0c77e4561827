// ALWAYS_BCC (Postfix's always_bcc) on the running appliance: every message the MX or submission
// accepts also reaches the archive (an alias of ours, expanded: a mailbox here and an address the
// remote MX refuses), and nothing in the other copies names it; the archive's failed copy causes
// no notice. Driven by swaks; the remote MX is a scripted smtp-server.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
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
    users: { 'bob@ours.example': 'pw-bob', 'keeper@ours.example': 'pw-keeper' },
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
