import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import { SmtpError } from '@facteur/smtp-error'
import { filterInspector, type InspectedDraft, type Verdict } from '@facteur/filter-client'

const MESSAGE = 'From: a@remote.example\r\nSubject: hi\r\n\r\nhello\r\n'

/** A data file as the spool's writer leaves it: `message`, then (a reused file) `rest`, cut at commit. */
async function stored(
  t: { after: (fn: () => Promise<void>) => void },
  message = MESSAGE,
  rest = '',
): Promise<{ id: string; path: string; size: number }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-inspect-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'msg')
  await fs.writeFile(file, message + rest, 'latin1')
  return { id: 'Q1', path: file, size: Buffer.byteLength(message, 'latin1') }
}

const draft = (): InspectedDraft => ({
  sender: 'a@remote.example',
  recipients: [{ original: 'bob@ours.example' }],
  client: { ip: '192.0.2.1', helo: 'mail.remote.example' },
  prepend: 'Received: from mail.remote.example\r\n',
})

/** A real HTTP server standing in for the filter: answers `reply`, or never answers. */
async function fakeFilter(
  t: { after: (fn: () => Promise<void>) => void },
  reply: ((body: string, envelope: string) => Verdict) | 'hang',
): Promise<string> {
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString('latin1')))
    req.on('end', () => {
      if (reply === 'hang') return
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply(body, String(req.headers['x-facteur-envelope']))))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function closedPort(): Promise<number> {
  const s = http.createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

const checks = {
  virus: { status: 'clean' },
  spam: { status: 'skipped', reason: 'off' },
  auth: { status: 'skipped', reason: 'outbound', forged: 0 },
} as const

test('sends our Received: and the stored bytes with the envelope, and prepends the verdict headers', async (t) => {
  let seen = { body: '', envelope: '' }
  const url = await fakeFilter(t, (body, envelope) => {
    seen = { body, envelope }
    return { action: 'junk', headers: 'X-Spam-Flag: YES\r\n', removeHeaders: [], checks }
  })
  const inspect = filterInspector({ url, timeoutMs: 5000, failure: 'tempfail' }, { direction: 'inbound' })!
  const d = draft()
  await inspect(await stored(t), [], d)
  assert.equal(seen.body, 'Received: from mail.remote.example\r\n' + MESSAGE)
  assert.deepEqual(JSON.parse(seen.envelope), {
    direction: 'inbound',
    ip: '192.0.2.1',
    helo: 'mail.remote.example',
    sender: 'a@remote.example',
    recipients: ['bob@ours.example'],
    queueId: 'Q1',
  })
  assert.equal(d.prepend, 'X-Spam-Flag: YES\r\nReceived: from mail.remote.example\r\n')
  assert.equal(d.folder, 'Junk')
})

/** What an accepting filter received for the stored `message` (followed in its file by `rest`). */
async function sentToFilter(t: { after: (fn: () => Promise<void>) => void }, message: string, rest: string): Promise<string> {
  let seen = ''
  const url = await fakeFilter(t, (body) => {
    seen = body
    return { action: 'accept', headers: '', removeHeaders: [], checks }
  })
  const inspect = filterInspector({ url, timeoutMs: 5000, failure: 'tempfail' }, { direction: 'inbound' })!
  await inspect(await stored(t, message, rest), [], draft())
  return seen
}

test('a message too large to read whole is streamed to the filter, its bytes only', async (t) => {
  // Over 256 KiB (READ_WHOLE): the stored file goes through a read stream, not one read.
  const big = 'From: a@remote.example\r\nSubject: big\r\n\r\n' + 'x'.repeat(76).concat('\r\n').repeat(5000) + '\xe9t\xe9\r\n'
  assert.ok(big.length > 256 * 1024)
  assert.equal(await sentToFilter(t, big, 'an older message'), 'Received: from mail.remote.example\r\n' + big)
})

test('only the message goes to the filter, not what follows it in a reused spool file', async (t) => {
  const seen = await sentToFilter(t, MESSAGE, 'the tail of an older, longer message\r\n')
  assert.equal(seen, 'Received: from mail.remote.example\r\n' + MESSAGE)
})

test('a reject verdict becomes the SMTP refusal', async (t) => {
  const url = await fakeFilter(t, () => ({
    action: 'reject',
    headers: '',
    code: 554,
    enhanced: '7.1',
    text: 'Virus found: X',
    removeHeaders: [],
    checks,
  }))
  const inspect = filterInspector({ url, timeoutMs: 5000, failure: 'tempfail' }, { direction: 'inbound' })!
  await assert.rejects(inspect(await stored(t), [], draft()), (err: SmtpError) => err.reply === '554 5.7.1 Virus found: X')
})

test('a filter that is down gives 451 4.7.1 with FILTER_FAILURE=tempfail', async (t) => {
  const url = `http://127.0.0.1:${await closedPort()}`
  const outcomes: string[] = []
  const inspect = filterInspector(
    { url, timeoutMs: 5000, failure: 'tempfail' },
    { direction: 'inbound', onOutcome: (o) => outcomes.push(o.action) },
  )!
  await assert.rejects(
    inspect(await stored(t), [], draft()),
    (err: SmtpError) => err.reply === '451 4.7.1 Message could not be scanned, try again later',
  )
  assert.deepEqual(outcomes, ['unscanned'])
})

test('a filter slower than FILTER_TIMEOUT is passed by with FILTER_FAILURE=accept, marked not scanned', async (t) => {
  const url = await fakeFilter(t, 'hang')
  const inspect = filterInspector({ url, timeoutMs: 300, failure: 'accept' }, { direction: 'inbound' })!
  const d = draft()
  const started = Date.now()
  await inspect(await stored(t), [], d)
  assert.ok(Date.now() - started < 3000)
  assert.equal(d.prepend, 'X-Facteur-Filter: not scanned (filter unavailable)\r\nReceived: from mail.remote.example\r\n')
  assert.equal(d.folder, undefined)
})

test('FILTER_URL=off means no inspect hook at all', () => {
  assert.equal(filterInspector({ url: null, timeoutMs: 1000, failure: 'tempfail' }, { direction: 'inbound' }), undefined)
})
