// A message retried for days gathers one envelope per attempt at the end of its spool file;
// delivery rewrites the file with the message and the newest envelope once they pass 64 KB
// (packages/spool/README.md). Here a remote MX (scripted, reached through TRANSPORT_MAP) defers
// every MAIL FROM, with the retries 50 ms apart, until the message has been tried well past that
// point; then it accepts, and must get the very message that was sent.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { openSpool } from '@facteur/spool'
import { startAppliance } from './support/appliance.js'
import { startScriptedMx, type ScriptedMxOptions } from './support/scripted-mx.js'
import { sendPlain, queuedFor, waitFor } from './support/queue.js'

/** Attempts whose envelopes together pass 64 KB (each is a few hundred bytes). */
const ATTEMPTS = 200

const script: ScriptedMxOptions = { hostname: 'mx.slow.example', mail: '451 4.7.1 Try again later' }
const remote = await startScriptedMx(script)
const mx = await startAppliance({
  users: { 'alice@ours.example': 'pw' },
  env: {
    TRUSTED_NETWORKS: '127.0.0.1',
    TRANSPORT_MAP: `slow.example=[127.0.0.1]:${remote.port}`,
    QUEUE_RETRY_MIN: '50ms',
    QUEUE_RETRY_MAX: '50ms',
    QUEUE_SCAN_INTERVAL: '50ms', // a retry coming due is found by the interval's listing
    MAX_QUEUE_LIFETIME: '1h',
    DELAY_WARNING: 'off',
  },
})
after(async () => {
  await mx.stop()
  await remote.close()
})
const spool = await openSpool(mx.spoolDir)

test(`a message deferred ${ATTEMPTS} times keeps a spool file of bounded size, then is delivered whole`, async (t) => {
  await sendPlain(mx.port('smtp-ingress', 'smtp'), 'alice@ours.example', ['bob@slow.example'], 'retried for days')
  const context = (): string => mx.output().slice(-3000)
  let largest = 0
  let previous = 0
  let shrank = false
  const entry = await waitFor(
    `${ATTEMPTS} attempts`,
    async () => {
      const e = await queuedFor(spool, 'bob@slow.example')
      if (!e) return false
      const size = await fs.stat(path.join(mx.spoolDir, e.state, e.id)).then(
        (s) => s.size,
        () => 0, // claimed or released between the listing and the stat
      )
      if (size === 0) return false
      largest = Math.max(largest, size - e.envelope.size)
      if (size < previous) shrank = true
      previous = size
      return e.envelope.recipients[0].attempts >= ATTEMPTS && e
    },
    { timeoutMs: 120_000, context },
  )
  t.diagnostic(`${entry.envelope.recipients[0].attempts} attempts; at most ${largest} bytes of envelopes after the message`)
  assert.match(entry.envelope.recipients[0].lastError ?? '', /^451 4\.7\.1 /)
  // The file grew by an envelope per attempt, was rewritten shorter, and never held much more than 64 KB of them.
  assert.ok(largest > 32 * 1024, `the envelopes grew (${largest} bytes)`)
  assert.ok(shrank, 'the file was compacted')
  assert.ok(largest < 64 * 1024 + 4096, `compacted: ${largest} bytes of envelopes`)

  script.mail = undefined // the MX accepts from now on
  const got = await waitFor('the message at the MX', async () => remote.messages.find((m) => m.to.includes('bob@slow.example')), {
    timeoutMs: 30_000,
    context,
  })
  const text = got.data.toString('latin1')
  assert.match(text, /^Subject: retried for days\r$/m)
  assert.match(text, /\r\n\r\nHello\.\r\n$/)
  assert.equal(remote.messages.length, 1, 'delivered once')
  await waitFor('the spool empty', async () => (await spool.list()).length === 0, { timeoutMs: 10_000, context })
})
