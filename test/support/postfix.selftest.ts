// Self-test for postfix.ts: a throwaway Postfix relays to smtp-sink.
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { startPostfix } from './postfix.js'
import { startSmtpSink } from './smtp-sink.js'
import { sendMail } from './smtp-session.js'

test('Postfix relays a message to the relay host and empties its queue', async (t) => {
  const sink = await startSmtpSink()
  t.after(() => sink.close())
  const postfix = await startPostfix({ relayHost: '127.0.0.1', relayPort: sink.port })
  t.after(() => postfix.close())

  const result = await sendMail(postfix.port, {
    from: 'a@ours.example',
    to: ['b@remote.example'],
    data: 'From: a@ours.example\nTo: b@remote.example\nSubject: relay me\n\nhello\n',
  })
  assert.equal(result.greeting, '220 postfix.test ESMTP')
  assert.match(result.message ?? '', /^250 2\.0\.0 Ok: queued as [0-9A-F]+$/)
  await postfix.waitForEmptyQueue(10_000)
  assert.equal(await postfix.queueEmpty(), true)

  const [message] = await sink.waitForMessages(1)
  assert.equal(message.mailArgs.split(' ')[0], '<a@ours.example>')
  assert.deepEqual(
    message.rcptArgs.map((args) => args.split(' ')[0]),
    ['<b@remote.example>'],
  )
  assert.match(message.message, /^Received: from client\.test /)
  assert.match(message.message, /\nSubject: relay me\n/)
  assert.match(await readFile(postfix.logFile, 'utf8'), /status=sent \(250 2\.0\.0 Ok\)/)
})

test('Postfix keeps a message the relay host tempfails, with the reason', async (t) => {
  const sink = await startSmtpSink({ softReject: ['RCPT'], softReply: '451 4.7.1 Try later' })
  t.after(() => sink.close())
  const postfix = await startPostfix({
    relayHost: '127.0.0.1',
    relayPort: sink.port,
    files: { rcpt: 'refused@remote.example REJECT No thanks\n' },
    extraMain: {
      smtpd_recipient_restrictions: 'check_recipient_access texthash:$config_directory/rcpt, permit_mynetworks, reject',
    },
  })
  t.after(() => postfix.close())

  const result = await sendMail(postfix.port, {
    from: 'a@ours.example',
    to: ['refused@remote.example', 'b@remote.example'],
    data: 'x\n',
  })
  assert.deepEqual(result.rcpt, ['554 5.7.1 <refused@remote.example>: Recipient address rejected: No thanks', '250 2.1.5 Ok'])
  let entries = await postfix.queue()
  for (let i = 0; i < 50 && !entries[0]?.recipients[0]?.delay_reason; i++) {
    await sleep(100)
    entries = await postfix.queue()
  }
  assert.equal(entries.length, 1) // deferred, or moving through incoming and active on the next 1 s retry
  assert.match(entries[0].recipients[0].delay_reason ?? '', /451 4\.7\.1 Try later/)
  await assert.rejects(postfix.waitForEmptyQueue(300), /queue not empty/)
})
