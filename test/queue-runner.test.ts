// Delivery's queue runner finds mail by the names inotify gives as messages land in queue/, and
// lists queue/ when it must: here the interval's listing is an hour away, so every message below
// is found by its landing, or by the listing that follows a moment when every worker was busy
// (one worker, twenty messages arriving together from Postfix's smtp-source), or by the listing at
// start-up (mail queued while delivery was down).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { startAppliance } from './support/appliance.js'
import { readMbox, waitForCount } from './support/mbox.js'
import { runOk } from './support/process.js'
import { sendPlain } from './support/queue.js'
import { servicePid, waitForRestart } from './support/supervisor.js'

const mx = await startAppliance({
  users: { 'alice@ours.example': 'pw' },
  env: { QUEUE_SCAN_INTERVAL: '1h', DELIVERY_WORKERS: '1' },
})
after(() => mx.stop())
const port = mx.port('smtp-ingress', 'smtp')
const mbox = path.join(mx.mailDir, 'alice')

test('twenty messages at once with one worker and no interval scan: all delivered', async () => {
  await runOk(
    '/usr/sbin/smtp-source',
    [
      '-s',
      '5',
      '-m',
      '20',
      '-l',
      '1024',
      '-f',
      'load@client.example',
      '-M',
      'client.example',
      '-t',
      'alice@ours.example',
      `127.0.0.1:${port}`,
    ],
    { timeoutMs: 60_000 },
  )
  await waitForCount(() => readMbox(mbox).catch(() => []), 20)
})

test('mail queued while delivery was down is found by the listing at start-up', async () => {
  const before = (await readMbox(mbox)).length
  const pid = await servicePid(mx, 'delivery')
  process.kill(pid, 'SIGSTOP') // frozen: it sees no landing while the message is queued
  try {
    await sendPlain(port, 'sender@remote.example', ['alice@ours.example'], 'while-delivery-was-down')
  } finally {
    process.kill(pid, 'SIGKILL')
  }
  await waitForRestart(mx, 'delivery', pid)
  const got = await waitForCount(() => readMbox(mbox), before + 1)
  assert.ok(got.some((m) => m.includes('Subject: while-delivery-was-down')))
})
