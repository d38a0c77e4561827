// Greylisting (GREYLIST_DELAY) on the running appliance: a real client is deferred, retries after
// the delay and its message is delivered; TRUSTED_NETWORKS are not greylisted.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startAppliance, type Appliance } from './support/appliance.js'
import { swaksMail, lastReply } from './support/swaks.js'
import { readMbox, waitForCount } from './support/mbox.js'

let mx: Appliance
before(async () => {
  mx = await startAppliance({
    users: { 'bob@ours.example': 'pw-bob' },
    env: { GREYLIST_DELAY: '1s', TRUSTED_NETWORKS: '127.0.0.41/32', GREYLIST_EXEMPT: '127.0.0.42, partner.example' },
  })
})
after(() => mx?.stop())

const send = (from: string, subject: string, sender = 'alice@remote.example') =>
  swaksMail(mx.port('smtp-ingress', 'smtp'), { client: from, sender, to: 'bob@ours.example', subject })
const bob = (): Promise<string[]> => readMbox(path.join(mx.mailDir, 'bob'))

test('defers a first-time sender with 451 4.7.1 at RCPT, takes its retry after GREYLIST_DELAY and delivers it', async () => {
  const first = await send('127.0.0.40', 'first try')
  assert.equal(lastReply(first, 'RCPT'), '451 4.7.1 Greylisted, try again in 1 second')
  await sleep(1100)
  const retry = await send('127.0.0.40', 'retry')
  assert.match(lastReply(retry, '.') ?? '', /^250 /, retry.stdout)
  const got = await waitForCount(bob, 1)
  assert.ok(got.some((m) => m.includes('Subject: retry')))
  assert.ok(!got.some((m) => m.includes('Subject: first try')))
})

test('does not greylist TRUSTED_NETWORKS nor GREYLIST_EXEMPT, and saves its state in the spool directory at stop', async () => {
  for (const [from, sender] of [
    ['127.0.0.41', 'alice@remote.example'],
    ['127.0.0.42', 'alice@remote.example'],
    ['127.0.0.43', 'news@mail.partner.example'],
  ]) {
    const out = await send(from, 'not greylisted', sender)
    assert.match(lastReply(out, '.') ?? '', /^250 /, out.stdout)
  }
  assert.equal(await mx.stop(), 0)
  const saved = JSON.parse(await fs.readFile(path.join(mx.spoolDir, 'greylist.json'), 'utf8')) as { triplets: [string, unknown][] }
  assert.deepEqual(
    saved.triplets.map(([key]) => key),
    ['127.0.0 alice@remote.example bob@ours.example'],
  )
})
