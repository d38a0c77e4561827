// Submission asks the content filter (direction outbound) during DATA, on the running appliance
// with a real clamd: a virus from a user is refused in the dialogue, clean mail is delivered, and
// an Authentication-Results field claiming our authserv-id is removed (RFC 8601 §5).
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { startAppliance, type Appliance } from './support/appliance.js'
import { swaksSubmit, lastReply } from './support/swaks.js'
import { readMbox, waitForCount } from './support/mbox.js'
import { startClamd, EICAR, EICAR_SIGNATURE, type Clamd } from './support/clamd.js'

let clamd: Clamd
let app: Appliance

before(async () => {
  clamd = await startClamd()
  app = await startAppliance({
    users: { 'alice@ours.example': 'pw-alice', 'bob@ours.example': 'pw-bob' },
    services: ['filter', 'smtp-ingress', 'delivery', 'submission'],
    env: { CLAMAV_PORT: String(clamd.port), SPAM_ENGINE: 'off', FILTER_SCAN_TIMEOUT: '10s' },
  })
})
after(async () => {
  await app?.stop()
  await clamd?.close()
})

const submit = (args: string[]) =>
  swaksSubmit(app.port('submission', 'submission'), 'alice@ours.example', 'pw-alice', [
    '--from',
    'alice@ours.example',
    '--to',
    'bob@ours.example',
    '--timeout',
    '20',
    ...args,
  ])

test("a virus in a user's message is refused at DATA with 554 5.7.1 naming the signature", async () => {
  const file = path.join(app.dir, 'eicar.com')
  await fs.writeFile(file, EICAR)
  const r = await submit(['--attach', `@${file}`])
  assert.equal(lastReply(r.stdout, '.'), `554 5.7.1 Virus found: ${EICAR_SIGNATURE}`)
  await app.waitForLog(/submission info: refused .*cmd=DATA .*filter=reject/)
})

test('clean mail is delivered after the scan, without an Authentication-Results field claiming our authserv-id', async () => {
  const r = await submit([
    '--header',
    'Subject: clean',
    '--add-header',
    'Authentication-Results: mx.ours.example; dkim=pass header.d=bank.example',
  ])
  assert.match(lastReply(r.stdout, '.') ?? '', /^250 /, r.stdout)
  const [m] = await waitForCount(async () => (await readMbox(path.join(app.mailDir, 'bob'))).filter((x) => x.includes('Subject: clean')), 1)
  assert.doesNotMatch(m, /bank\.example/)
  await app.waitForLog(/submission info: queued .*filter=accept/)
})
