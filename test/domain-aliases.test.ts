// A domain's `@domain` entry in the aliases file, made with mailctl against the running appliance:
// a domain aliased to another (`@alias.example: @ours.example`, the local part kept, as Postfix's
// virtual(5)), and a domain's catch-all (`@catch.example: bob@ours.example`). Driven by swaks.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { startAppliance, ROOT, type Appliance } from './support/appliance.js'
import { swaksMail, swaksSubmit, lastReply } from './support/swaks.js'
import { readMbox, waitForCount } from './support/mbox.js'
import { runOk } from './support/process.js'

let app: Appliance
let mx: number

before(async () => {
  app = await startAppliance({
    services: ['smtp-ingress', 'delivery', 'submission'],
    env: { LOCAL_DOMAINS: 'ours.example,alias.example,catch.example' },
    users: { 'alice@ours.example': 'pw-alice', 'bob@ours.example': 'pw-bob' },
  })
  mx = app.port('smtp-ingress', 'smtp')
  const mailctl = (...args: string[]) => runOk('npx', ['mailctl', ...args], { cwd: ROOT, env: app.env, timeoutMs: 30_000 })
  await mailctl('alias', 'add', '@alias.example', '@ours.example')
  await mailctl('alias', 'add', '@catch.example', 'bob@ours.example')
  await mailctl('alias', 'add', 'sales@catch.example', 'alice@ours.example')
})

after(() => app?.stop())

const inbox = (user: string, subject: string) => async () =>
  // With several LOCAL_DOMAINS a mailbox is MAIL_DIR/DOMAIN/USER.
  (await readMbox(path.join(app.mailDir, 'ours.example', user))).filter((m) => m.includes(`\nSubject: ${subject}\n`))

test('a domain aliased to ours: alice@alias.example (and alice+tag@) reach alice; a name nobody has in ours is refused 550 5.1.1', async () => {
  for (const to of ['alice@alias.example', 'Alice+news@alias.example']) {
    const r = await swaksMail(mx, { sender: 'x@sender.test', to, subject: `to ${to}` })
    assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
    await waitForCount(inbox('alice', `to ${to}`), 1, 20_000)
  }
  const refused = await swaksMail(mx, { sender: 'x@sender.test', to: 'carol@alias.example' })
  assert.equal(lastReply(refused, 'RCPT'), '550 5.1.1 No such user here')
})

test("a domain's catch-all takes the names nobody has there, not those an alias has", async () => {
  const r = await swaksMail(mx, { sender: 'x@sender.test', to: ['whoever@catch.example', 'sales@catch.example'], subject: 'catch' })
  assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
  await waitForCount(inbox('bob', 'catch'), 1, 20_000)
  await waitForCount(inbox('alice', 'catch'), 1, 20_000)
})

test('submission: alice may send as alice@alias.example; the catch-all does not let bob send as any name of catch.example', async () => {
  const port = app.port('submission', 'submission')
  const asAlias = await swaksSubmit(port, 'alice@ours.example', 'pw-alice', [
    '--from',
    'alice@alias.example',
    '--to',
    'bob@ours.example',
    '--timeout',
    '15',
  ])
  assert.match(lastReply(asAlias, '.') ?? '', /^250 /, asAlias.stdout)
  const asAnyone = await swaksSubmit(port, 'bob@ours.example', 'pw-bob', [
    '--from',
    'ceo@catch.example',
    '--to',
    'alice@ours.example',
    '--timeout',
    '15',
  ])
  assert.equal(lastReply(asAnyone, 'MAIL'), '553 5.7.1 Sender address rejected: not owned by the authenticated user')
})

test('aliases_regexp, written while the appliance runs: a pattern takes names nobody has, $1 filled in; its target may not send as them', async () => {
  await fs.writeFile(path.join(app.configDir, 'aliases_regexp'), '/^(alice|bob)-[a-z]+@ours\\.example$/ $1@ours.example\n')
  const r = await swaksMail(mx, { sender: 'x@sender.test', to: 'bob-invoices@ours.example', subject: 'by pattern' })
  assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
  await waitForCount(inbox('bob', 'by pattern'), 1, 20_000)
  const nobody = await swaksMail(mx, { sender: 'x@sender.test', to: 'carol-x@ours.example' })
  assert.equal(lastReply(nobody, 'RCPT'), '550 5.1.1 No such user here')
  const asPattern = await swaksSubmit(app.port('submission', 'submission'), 'bob@ours.example', 'pw-bob', [
    '--from',
    'bob-invoices@ours.example',
    '--to',
    'alice@ours.example',
    '--timeout',
    '15',
  ])
  assert.equal(lastReply(asPattern, 'MAIL'), '553 5.7.1 Sender address rejected: not owned by the authenticated user')
})
