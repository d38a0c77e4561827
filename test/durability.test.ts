// Nothing accepted is lost: processes are killed with SIGKILL at the worst moments, and every
// message that got its 250 is delivered exactly once, whole. strace shows the fsync order.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { startAppliance, loopbackEnv, ROOT } from './support/appliance.js'
import { smtpSession, sendMail } from './support/smtp-session.js'
import { readMbox, readMaildir, waitForCount } from './support/mbox.js'
import { servicePid, waitForRestart } from './support/supervisor.js'
import { freePort, waitForPort } from './support/ports.js'
import { startDns } from './support/dnsmasq.js'
import { startTestFilter } from '../services/filter/test/harness.js'
import { openSpool } from '@facteur/spool'

test('a message answered 250 survives kill -9 of the ingress and of delivery right after the reply', async (t) => {
  const mx = await startAppliance({ users: { 'alice@ours.example': 'pw' } })
  t.after(() => mx.stop())
  const port = mx.port('smtp-ingress', 'smtp')
  // Delivery is killed first, so the message can only survive in the spool.
  const deliveryPid = await servicePid(mx, 'delivery')
  process.kill(deliveryPid, 'SIGSTOP')
  t.after(() => {
    try {
      process.kill(deliveryPid, 'SIGCONT')
    } catch {
      // restarted already
    }
  })
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const ingressPid = await servicePid(mx, 'smtp-ingress')
    const s = await smtpSession(port)
    await s.send('EHLO c')
    await s.send('MAIL FROM:<a@remote.example>')
    await s.send('RCPT TO:<alice@ours.example>')
    await s.send('DATA')
    const reply = await s.sendRaw(`Subject: durable ${i}\r\n\r\nbody ${i}\r\n.\r\n`)
    process.kill(ingressPid, 'SIGKILL') // at once, before QUIT
    assert.match(reply, /^250 2\.0\.0 Ok: queued as /)
    ids.push(/queued as (\w+)/.exec(reply)![1])
    await s.close()
    await waitForRestart(mx, 'smtp-ingress', ingressPid)
  }
  try {
    process.kill(deliveryPid, 'SIGKILL')
  } catch {
    // the supervisor's watchdog killed the unresponsive delivery already
  }
  await waitForRestart(mx, 'delivery', deliveryPid)
  const msgs = await waitForCount(() => readMbox(path.join(mx.mailDir, 'alice')), 3, 60_000)
  await new Promise((r) => setTimeout(r, 500))
  assert.equal((await readMbox(path.join(mx.mailDir, 'alice'))).length, 3)
  for (const id of ids) assert.equal(msgs.filter((m) => m.includes(`id ${id}`)).length, 1, id)
})

for (const format of ['mbox', 'maildir'] as const) {
  // Two recipients: mbox appends a copy to each; Maildir writes one file for both (hard links).
  test(`kill -9 of delivery in the middle of writing a large message to two recipients leaves no partial message (${format})`, async (t) => {
    const mx = await startAppliance({
      users: { 'alice@ours.example': 'pw', 'bob@ours.example': 'pw' },
      env: { MAILBOX_FORMAT: format, MESSAGE_SIZE_LIMIT: '200M' },
    })
    t.after(() => mx.stop())
    const port = mx.port('smtp-ingress', 'smtp')
    const to = ['alice@ours.example', 'bob@ours.example']
    const mailboxes = ['alice', 'bob'].map((u) => path.join(mx.mailDir, u))
    // A first small message, so the mailboxes hold something that must stay intact.
    assert.match((await sendMail(port, { from: 'a@remote.example', to, data: 'Subject: first\r\n\r\nsmall\r\n' })).message ?? '', /^250 /)
    const read = (mailbox: string) => (format === 'mbox' ? readMbox(mailbox) : readMaildir(mailbox))
    for (const m of mailboxes) await waitForCount(() => read(m), 1)

    const deliveryPid = await servicePid(mx, 'delivery')
    process.kill(deliveryPid, 'SIGSTOP') // hold delivery until the message is queued
    t.after(() => {
      try {
        process.kill(deliveryPid, 'SIGCONT')
      } catch {
        // killed already
      }
    })
    const line = 'The quick brown fox jumps over the lazy dog, again and again and again.\r\n'
    const lines = Math.ceil((64 * 1024 * 1024) / line.length)
    const r = await sendMail(port, {
      from: 'a@remote.example',
      to,
      data: `Subject: large\r\n\r\n${line.repeat(lines)}`,
      timeoutMs: 120_000,
    })
    assert.match(r.message ?? '', /^250 /)
    const started = Date.now()
    // Watch the write begin (the shared Maildir file is made in the first recipient's tmp/), then
    // kill delivery while it is under way.
    const growing = async (): Promise<boolean> => {
      if (format === 'mbox') return (await Promise.all(mailboxes.map((m) => fs.stat(m)))).some((st) => st.size > 2000)
      return (await fs.readdir(path.join(mailboxes[0], 'tmp'))).length > 0
    }
    process.kill(deliveryPid, 'SIGCONT')
    while (!(await growing())) {
      if (Date.now() - started > 30_000) throw new Error('delivery never started writing')
      await new Promise((res) => setImmediate(res))
    }
    process.kill(deliveryPid, 'SIGKILL')
    if (format === 'mbox') {
      const sizes = (await Promise.all(mailboxes.map((m) => fs.stat(m)))).map((st) => st.size)
      assert.ok(
        sizes.every((size) => size < lines * (line.length - 1)),
        `killed before an append ended: ${sizes.join(', ')}`,
      )
    } else for (const m of mailboxes) assert.equal((await readMaildir(m)).length, 1, 'killed before the links into new/')

    await waitForRestart(mx, 'delivery', deliveryPid)
    for (const m of mailboxes) await waitForCount(() => read(m), 2, 60_000)
    // The mailboxes are final once the message has left the spool: delivery lets it go only after
    // every copy is written and fsync'd (an mbox read earlier may show an append still under way).
    const inSpool = async (): Promise<string[]> =>
      (await Promise.all(['queue', 'active'].map((d) => fs.readdir(path.join(mx.spoolDir, d))))).flat().filter((n) => !n.startsWith('.'))
    await waitForCount(async () => ((await inSpool()).length ? [] : [true]), 1, 120_000)
    for (const m of mailboxes) {
      const final = await read(m)
      assert.equal(final.length, 2, m)
      assert.ok(final[0].includes('Subject: first'))
      const big = final.filter((x) => x.includes('Subject: large'))
      assert.equal(big.length, 1, m)
      const body = big[0].slice(big[0].indexOf('\n\n') + 2)
      assert.equal(body.length, lines * (line.length - 1), `the large message is whole in ${m}`)
    }
  })
}

/** A directory with config/ (alice and bob), spool/ and mail/, removed after the test. */
async function serviceDir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp('/tmp/facteur-strace-')
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  for (const d of ['config', 'spool', 'mail']) await fs.mkdir(path.join(dir, d))
  await fs.writeFile(path.join(dir, 'config', 'users'), 'alice@ours.example:{PLAIN}pw\nbob@ours.example:{PLAIN}pw\n')
  return dir
}

/** Runs one service alone under strace (its file calls) in `dir` until `act` resolves; returns the trace's lines. */
async function straced(
  t: TestContext,
  service: string,
  dir: string,
  env: Record<string, string>,
  act: () => Promise<void>,
): Promise<string[]> {
  const trace = path.join(dir, 'trace')
  const child = spawn(
    'strace',
    [
      '-f',
      '-y',
      '-s',
      '120',
      '-e',
      'trace=openat,fsync,fdatasync,rename,renameat,renameat2,link,linkat,unlink,unlinkat,write,writev',
      '-o',
      trace,
      process.execPath,
      '--import',
      'tsx',
      '--conditions=source',
      `services/${service}/src/main.ts`,
    ],
    {
      cwd: ROOT,
      env: { ...loopbackEnv(dir), LOG_FORMAT: 'json', ...env },
      stdio: 'ignore',
      detached: true, // its own process group: strace and the traced node are signalled together
    },
  )
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, sig)
    } catch {
      // gone already
    }
  }
  t.after(() => signal('SIGKILL'))
  await act()
  signal('SIGTERM')
  await new Promise((res) => child.once('exit', res))
  return (await fs.readFile(trace, 'utf8')).split('\n')
}

/** Runs the ingress alone under strace, sends it one message and returns the trace's lines and the queue id. */
async function traceOneMessage(t: TestContext, env: Record<string, string>): Promise<{ lines: string[]; id: string }> {
  const dir = await serviceDir(t)
  const port = await freePort()
  let id: string | undefined
  const lines = await straced(t, 'smtp-ingress', dir, { SMTP_PORT: String(port), ...env }, async () => {
    await waitForPort(port, '127.0.0.1', 60_000)
    const r = await sendMail(port, { from: 'a@remote.example', to: ['alice@ours.example'], data: 'Subject: traced\r\n\r\nx\r\n' })
    id = /queued as (\w+)/.exec(r.message ?? '')?.[1]
    assert.ok(id, JSON.stringify(r))
  })
  return { lines, id: id! }
}

/** Indexes in the trace of the commit's steps, asserted present. */
function commitSteps(lines: string[], id: string) {
  const at = (re: RegExp): number => lines.findIndex((l) => re.test(l))
  const create = at(new RegExp(`open\\w*\\(.*spool/data/${id}".*O_CREAT`))
  const envWrite = at(new RegExp(`write\\(\\d+<[^>]*/spool/data/${id}>, "\\{\\\\"version\\\\":1,\\\\"id\\\\":\\\\"${id}`))
  const fileSync = lines.findIndex((l, i) => i > envWrite && new RegExp(`fsync\\(\\d+<[^>]*/spool/data/${id}>`).test(l))
  const rename = at(new RegExp(`rename\\w*\\(.*spool/data/${id}".*spool/queue/${id}"`))
  const queueDirSync = lines.findIndex((l, i) => i > rename && /fsync\(\d+<[^>]*\/spool\/queue>/.test(l))
  const reply = at(new RegExp(`write\\w*\\(.*250 2\\.0\\.0 Ok: queued as ${id}`))
  const steps = { create, envWrite, fileSync, rename, queueDirSync, reply }
  for (const [k, v] of Object.entries(steps)) assert.ok(v >= 0, `${k} not found in the trace`)
  // The message file is made in data/ (openat with O_CREAT), the message then its envelope are
  // written to it, it is fsync'd, renamed into queue/, and queue/ is fsync'd: all before the 250.
  assert.ok(
    create < envWrite && envWrite < fileSync && fileSync < rename && rename < queueDirSync && queueDirSync < reply,
    JSON.stringify(steps),
  )
  return steps
}

test("strace shows the message and its envelope written to one file, fsync'd, renamed into queue/ and queue/ fsync'd, before the 250", async (t) => {
  const { lines, id } = await traceOneMessage(t, { FILTER_URL: 'off' })
  commitSteps(lines, id)
})

test("strace with the content filter on: the bytes are fsync'd while the filter reads them, then the envelope, the rename and queue/, before the 250", async (t) => {
  const dns = await startDns()
  t.after(() => dns.close())
  const filter = await startTestFilter({ CLAMAV_ENABLED: 'false', SPAM_ENGINE: 'off', DNS_SERVERS: dns.server })
  t.after(() => filter.close())
  const { lines, id } = await traceOneMessage(t, { FILTER_URL: `http://127.0.0.1:${filter.port}` })
  const steps = commitSteps(lines, id)
  // The filter's read of the stored bytes (the ingress opens the file again to send it), and an
  // fsync of the file begun before the verdict: both before the envelope is appended.
  const read = lines.findIndex((l) => new RegExp(`open\\w*\\(.*spool/data/${id}", O_RDONLY`).test(l))
  const earlySync = lines.findIndex((l) => new RegExp(`fsync\\(\\d+<[^>]*/spool/data/${id}>`).test(l))
  assert.ok(steps.create < read && read < steps.envWrite, JSON.stringify({ ...steps, read }))
  assert.ok(steps.create < earlySync && earlySync < steps.envWrite, JSON.stringify({ ...steps, earlySync }))
})

test("strace of delivery, one message to two Maildirs: one file written in tmp/, fsync'd, linked into both new/, fsync'd again with both new/, before the spool lets the message go", async (t) => {
  const dir = await serviceDir(t)
  const spool = await openSpool(path.join(dir, 'spool'))
  const to = ['alice@ours.example', 'bob@ours.example']
  const { id } = await spool.enqueue(Buffer.from('Subject: shared\r\n\r\nx\r\n'), {
    sender: 'a@remote.example',
    recipients: to.map((address) => ({ address, original: address, status: 'pending', attempts: 0 })),
    receivedAt: Date.now(),
    nextAttempt: 0,
    client: { ip: '127.0.0.1', helo: 'test', tls: false },
    source: 'smtp-ingress',
  })
  const newDirs = ['alice', 'bob'].map((u) => path.join(dir, 'mail', u, 'new'))
  const lines = await straced(t, 'delivery', dir, { MAILBOX_FORMAT: 'maildir' }, async () => {
    for (const d of newDirs) await waitForCount(async () => fs.readdir(d).catch(() => []), 1, 60_000)
    // Delivered: the message leaves active/ (its file kept in spare/ for reuse, or removed).
    await waitForCount(async () => ((await fs.readdir(path.join(dir, 'spool', 'active'))).includes(id) ? [] : [id]), 1, 10_000)
  })
  const at = (re: RegExp, from = 0): number => lines.findIndex((l, i) => i >= from && re.test(l))
  const create = at(/open\w*\(.*mail\/alice\/tmp\/[^"]*".*O_CREAT/)
  const tmp = /mail\/alice\/tmp\/([^"]+)"/.exec(lines[create] ?? '')?.[1] ?? ''
  const write = at(new RegExp(`write\\(\\d+<[^>]*/tmp/${tmp}>`))
  const fileSync = at(new RegExp(`fsync\\(\\d+<[^>]*/tmp/${tmp}>`))
  const links = ['alice', 'bob'].map((u) => at(new RegExp(`link\\w*\\(.*tmp/${tmp}".*mail/${u}/new/`)))
  const inodeSync = at(new RegExp(`fsync\\(\\d+<[^>]*/tmp/${tmp}>`), fileSync + 1)
  const dirSyncs = ['alice', 'bob'].map((u) => at(new RegExp(`fsync\\(\\d+<[^>]*mail/${u}/new>`)))
  // The file leaves active/ (renamed into spare/ for reuse, or removed): active/ is its first name.
  const lets = at(new RegExp(`(rename\\w*|unlink\\w*)\\([^"]*"[^"]*/spool/active/${id}"`))
  const steps = { create, write, fileSync, links, inodeSync, dirSyncs, lets }
  assert.ok(
    [create, write, fileSync, ...links, inodeSync, ...dirSyncs, lets].every((i) => i >= 0),
    JSON.stringify(steps),
  )
  assert.equal(lines.filter((l) => /open\w*\(.*mail\/\w+\/tmp\/.*O_CREAT/.test(l)).length, 1, 'one file for both')
  assert.ok(create < write && write < fileSync && links.every((l) => fileSync < l && l < inodeSync), JSON.stringify(steps))
  assert.ok(dirSyncs.every((d) => links.every((l) => l < d) && d < lets) && inodeSync < lets, JSON.stringify(steps))
})
