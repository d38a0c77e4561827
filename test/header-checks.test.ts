// Postfix's header_checks and body_checks tables in CONFIG_DIR, written while the appliance runs
// (re-read when they change): REJECT at the end of DATA, DISCARD with a 250, HOLD until `mailctl
// queue release`, and the field edits (IGNORE, REPLACE, PREPEND), on :25 and on submission; body
// lines in the first 50 KiB. Driven by swaks.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { openSpool, type Spool } from '@facteur/spool'
import { startAppliance, ROOT, type Appliance } from './support/appliance.js'
import { swaks, swaksSubmit, lastReply } from './support/swaks.js'
import { readMbox, waitForCount } from './support/mbox.js'
import { queuedFor, waitFor } from './support/queue.js'
import { run, runOk } from './support/process.js'

let app: Appliance
let mx: number
let spool: Spool

const TABLE = `# header_checks, as on a Postfix host
/^Subject:.*\\bviagra\\b/        REJECT 5.7.0 No pills here
/^X-Mailer: MassMail/           DISCARD bulk sender
/^X-Review: (\\w+)/             HOLD review by $1
/^X-Internal-Host:/             IGNORE
/^Subject: (\\w+) report$/      REPLACE Subject: [report] $1
/^List-Id:/                     PREPEND X-Listed: yes
/^From:.*@old\\.example/        WARN sender of the old domain
/^X-Broken:/                    REDIRECT somebody@else.example
`

before(async () => {
  app = await startAppliance({
    services: ['smtp-ingress', 'delivery', 'submission'],
    users: { 'alice@ours.example': 'pw-alice', 'bob@ours.example': 'pw-bob' },
  })
  mx = app.port('smtp-ingress', 'smtp')
  spool = await openSpool(app.spoolDir)
  // Written after the start: the services read it at the next message.
  await fs.writeFile(path.join(app.configDir, 'header_checks'), TABLE)
  await fs.writeFile(
    path.join(app.configDir, 'body_checks'),
    '/send bitcoin to/ REJECT 5.7.0 No scams\n/^-- review me --$/ HOLD body review\n',
  )
})

after(() => app?.stop())

const send = (subject: string, headers: string[] = [], from = 'x@sender.test', body?: string) =>
  swaks([
    '--server',
    `127.0.0.1:${mx}`,
    '--from',
    from,
    '--to',
    'bob@ours.example',
    '--header',
    `Subject: ${subject}`,
    ...headers.flatMap((h) => ['--add-header', h]),
    ...(body === undefined ? [] : ['--body', body]),
    '--timeout',
    '15',
  ])
const bobs = (subject: string) => async () =>
  (await readMbox(path.join(app.mailDir, 'bob'))).filter((m) => m.includes(`\nSubject: ${subject}\n`))

test('REJECT refuses the message at the end of DATA with its code and text; a line with an action Facteur has not is logged and skipped', async () => {
  const r = await send('cheap viagra today')
  assert.equal(lastReply(r, '.'), '550 5.7.0 No pills here')
  assert.match(app.output(), / header_checks .*rule=2 .*action=reject/)
  assert.match(app.output(), /header_checks line ignored .*line=9 .*REDIRECT.{0,3} is not an action Facteur has/)
  const plain = await send('after the refusal')
  assert.match(lastReply(plain, '.') ?? '', /^250 /)
  await waitForCount(bobs('after the refusal'), 1)
  assert.deepEqual(await bobs('cheap viagra today')(), [])
})

test('DISCARD answers 250 and drops the message; WARN logs and delivers', async () => {
  const dropped = await send('newsletter', ['X-Mailer: MassMail 2.0'])
  assert.match(lastReply(dropped, '.') ?? '', /^250 2\.0\.0 Ok: queued as /)
  const warned = await send('from the old domain', [], 'someone@old.example')
  assert.match(lastReply(warned, '.') ?? '', /^250 /)
  await waitForCount(bobs('from the old domain'), 1)
  assert.deepEqual(await bobs('newsletter')(), [], 'the discarded message is nowhere')
  assert.match(app.output(), / discarded .*reason="?bulk sender/)
  assert.match(app.output(), /warn.* header_checks .*action=warn .*text="?sender of the old domain/)
})

test('HOLD queues the message on hold: it waits until mailctl queue release lets it go', async () => {
  const r = await send('for review', ['X-Review: legal'])
  assert.match(lastReply(r, '.') ?? '', /^250 /)
  const entry = await waitFor('the held message', () => queuedFor(spool, 'bob@ours.example'))
  assert.equal(entry.state, 'hold')
  assert.match(app.output(), / held .*reason="?review by legal/)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  assert.deepEqual(await bobs('for review')(), [], 'not delivered while held')
  await runOk('npx', ['mailctl', 'queue', 'release', entry.id], { cwd: ROOT, env: app.env, timeoutMs: 30_000 })
  await waitForCount(bobs('for review'), 1)
})

test('body_checks: a body line refuses the message at the end of DATA, or holds it; past the first 50 KiB nothing is looked at', async () => {
  const scam = await send('an offer', [], 'x@sender.test', 'Hello,\nplease send bitcoin to this address.\n')
  assert.equal(lastReply(scam, '.'), '550 5.7.0 No scams')
  assert.match(app.output(), / body_checks .*rule=1 .*action=reject .*line="please send bitcoin to this address\."/)
  const held = await send('to check', [], 'x@sender.test', 'text\n-- review me --\n')
  assert.match(lastReply(held, '.') ?? '', /^250 /)
  assert.match(app.output(), / held .*reason="?body review/)
  const late = await send('long one', [], 'x@sender.test', `${'y'.repeat(70)}\n`.repeat(800) + 'send bitcoin to me\n')
  assert.match(lastReply(late, '.') ?? '', /^250 /, 'the phrase is past body_checks_size_limit')
  await waitForCount(bobs('long one'), 1)
})

test('submission: IGNORE removes a field, REPLACE rewrites one with its groups, PREPEND adds one before', async () => {
  const r = await swaksSubmit(app.port('submission', 'submission'), 'alice@ours.example', 'pw-alice', [
    '--from',
    'alice@ours.example',
    '--to',
    'bob@ours.example',
    '--header',
    'Subject: weekly report',
    '--add-header',
    'X-Internal-Host: build7.lan',
    '--add-header',
    'List-Id: <team.ours.example>',
    '--timeout',
    '15',
  ])
  assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
  const [m] = await waitForCount(bobs('[report] weekly'), 1)
  assert.doesNotMatch(m, /^X-Internal-Host:/m)
  assert.doesNotMatch(m, /^Subject: weekly report$/m)
  assert.match(m, /^X-Listed: yes\nList-Id: <team\.ours\.example>$/m)
})

test('mailctl header-checks test shows what the table does to a message, rule by rule, and the outcome', async () => {
  const mailctl = (args: string[], input: string) => run('npx', ['mailctl', ...args], { cwd: ROOT, env: app.env, input, timeoutMs: 30_000 })
  const held = await mailctl(['header-checks', 'test'], 'X-Review: legal\nX-Internal-Host: a\nSubject: hi\n\nbody\n-- review me --\n')
  assert.equal(held.code, 0, held.stderr)
  assert.equal(
    held.stdout,
    [
      '; line 9 ignored: "REDIRECT" is not an action Facteur has (REJECT, DISCARD, HOLD, WARN, INFO, IGNORE, REPLACE, PREPEND, DUNNO)',
      'line 4: HOLD review by legal  <- X-Review: legal',
      'line 5: IGNORE  <- X-Internal-Host: a',
      'body_checks line 2: HOLD body review  <- -- review me --',
      'held: review by legal, 1 field(s) edited',
      '',
    ].join('\n'),
  )
  const rejected = await mailctl(['header-checks', 'test'], 'Subject: cheap viagra\n\n')
  assert.match(rejected.stdout, /^rejected: 550 5\.7\.0 No pills here$/m)
  const scam = await mailctl(['header-checks', 'test'], 'Subject: hi\n\nplease send bitcoin to me\n')
  assert.match(scam.stdout, /^rejected: 550 5\.7\.0 No scams$/m)
})
