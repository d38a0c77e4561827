// Postfix's header_checks table in CONFIG_DIR, written while the appliance runs (it is re-read
// when it changes): REJECT at the end of DATA, DISCARD with a 250, HOLD until `mailctl queue
// release`, and the field edits (IGNORE, REPLACE, PREPEND), on :25 and on submission. Driven by swaks.
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
})

after(() => app?.stop())

const send = (subject: string, headers: string[] = [], from = 'x@sender.test') =>
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
  const held = await mailctl(['header-checks', 'test'], 'X-Review: legal\nX-Internal-Host: a\nSubject: hi\n\nbody\n')
  assert.equal(held.code, 0, held.stderr)
  assert.equal(
    held.stdout,
    [
      '; line 9 ignored: "REDIRECT" is not an action Facteur has (REJECT, DISCARD, HOLD, WARN, INFO, IGNORE, REPLACE, PREPEND, DUNNO)',
      'line 4: HOLD review by legal  <- X-Review: legal',
      'line 5: IGNORE  <- X-Internal-Host: a',
      'held: review by legal, 1 field(s) edited',
      '',
    ].join('\n'),
  )
  const rejected = await mailctl(['header-checks', 'test'], 'Subject: cheap viagra\n\n')
  assert.match(rejected.stdout, /^rejected: 550 5\.7\.0 No pills here$/m)
})
