// Running the appliance: health checks that fail while the spool or the mail directory is broken,
// bad configuration that stops start-up with one line, SIGTERM draining a transaction in flight,
// the ports file and a killed service restarted on its port, and mailctl against the running
// services.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import bcrypt from 'bcryptjs'
import { SMTPServer } from 'smtp-server'
import { openSpool } from '@facteur/spool'
import { startAppliance, loopbackEnv, readPorts, ROOT, type Appliance } from './support/appliance.js'
import { applianceHealth, httpGet, servicePid, waitForRestart } from './support/supervisor.js'
import { smtpSession, sendMail, dataBytes } from './support/smtp-session.js'
import { readMbox, waitForCount } from './support/mbox.js'
import { canConnect, freePort } from './support/ports.js'
import { swaksSubmit } from './support/swaks.js'
import { waitFor } from './support/queue.js'
import { removeDir, run, tempDir, type RunResult } from './support/process.js'

type Health = { status: string; service: string; checks: Record<string, { status: string; detail?: string }> }

async function healthz(port: number): Promise<{ code: number; body: Health }> {
  const { code, body } = await httpGet(port, '/healthz')
  return { code, body: JSON.parse(body) as Health }
}

/** Polls (bounded) until `probe` holds; returns its last value for the assertion message. */
async function eventually<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await read()
    if (ok(v)) return v
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function rcpt(port: number, address: string): Promise<string> {
  const s = await smtpSession(port)
  try {
    await s.send('EHLO client.remote.example')
    await s.send('MAIL FROM:<sender@remote.example>')
    return await s.send(`RCPT TO:<${address}>`)
  } finally {
    await s.close()
  }
}

/** A remote MX on a port fixed in advance (TRANSPORT_MAP names it); `greylist` answers MAIL with 451. */
async function listenMx(port: number): Promise<{ messages: { to: string[]; data: string }[]; greylist: boolean; close(): Promise<void> }> {
  const mx = {
    messages: [] as { to: string[]; data: string }[],
    greylist: false,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    closeTimeout: 1000,
    onMailFrom(address, session, cb) {
      if (!mx.greylist) return cb()
      cb(Object.assign(new Error('4.7.1 Greylisted, try again later'), { responseCode: 451 }))
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        mx.messages.push({ to: session.envelope.rcptTo.map((r) => r.address), data: Buffer.concat(chunks).toString('utf8') })
        cb(null)
      })
    },
  })
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  return mx
}

describe('a running appliance', () => {
  let mx: Appliance
  let smtpPort: number
  let remotePort: number
  let downPort: number

  before(async () => {
    // Mail for remote.example and down.example goes to loopback ports where nothing listens yet.
    remotePort = await freePort()
    downPort = await freePort()
    mx = await startAppliance({
      users: { 'alice@ours.example': 'pw-alice-1' },
      services: ['smtp-ingress', 'delivery', 'submission', 'supervisor'],
      env: {
        TRUSTED_NETWORKS: '127.0.0.1',
        TRANSPORT_MAP: `remote.example=[127.0.0.1]:${remotePort},down.example=[127.0.0.1]:${downPort}`,
      },
    })
    smtpPort = mx.port('smtp-ingress', 'smtp')
  })
  after(() => mx?.stop())

  const mailctl = (args: string[], input?: string): Promise<RunResult> =>
    run('npx', ['mailctl', ...args], { cwd: ROOT, env: mx.env, input, timeoutMs: 30_000 })

  test('the ports file lists every service and its listeners, and each one answers', async () => {
    const ports = await readPorts(mx.spoolDir)
    const listeners = Object.fromEntries(Object.entries(ports).map(([service, l]) => [service, Object.keys(l).sort()]))
    assert.deepEqual(listeners, {
      'smtp-ingress': ['health', 'smtp'],
      delivery: ['health'],
      submission: ['health', 'submission', 'submissions'],
      supervisor: ['status'],
    })
    for (const [service, l] of Object.entries(ports)) {
      for (const [name, { address, port }] of Object.entries(l)) {
        assert.equal(address, '127.0.0.1', `${service}.${name}`)
        assert.ok(port > 0 && port < 65536, `${service}.${name}`)
        assert.ok(await canConnect(port), `${service}.${name} on ${port} accepts connections`)
      }
    }
    // The supervisor's view agrees with the file.
    const { body } = await applianceHealth(mx)
    for (const s of ['smtp-ingress', 'delivery', 'submission']) assert.deepEqual(body.services[s].ports, ports[s], s)
  })

  test('kill -9 of the ingress: the supervisor restarts it on the same SMTP port and counts one restart', async () => {
    const pid = await servicePid(mx, 'smtp-ingress')
    process.kill(pid, 'SIGKILL')
    const newPid = await waitForRestart(mx, 'smtp-ingress', pid)
    assert.notEqual(newPid, pid)
    const s = await smtpSession(smtpPort)
    assert.match(s.greeting, /^220 mx\.ours\.example /)
    await s.close()
    const { body } = await applianceHealth(mx)
    assert.equal(body.services['smtp-ingress'].restarts, 1)
    assert.equal(body.services.delivery.restarts, 0)
    assert.equal(body.restarts, 1)
    assert.equal((await readPorts(mx.spoolDir))['smtp-ingress'].smtp.port, smtpPort)
    assert.match(mx.output(), /supervisor warn: service exited, restarting child=smtp-ingress .*signal=SIGKILL.*restarts=1/)
  })

  test('the ingress /healthz answers 503 naming the spool check while SPOOL_DIR/data is not a directory, 200 once it is back', async () => {
    const port = mx.port('smtp-ingress', 'health')
    const ok = await healthz(port)
    assert.equal(ok.code, 200)
    assert.equal(ok.body.checks.spool.status, 'ok')
    // Root passes every permission check, so chmod would not break anything: a file in place of data/ does.
    const data = path.join(mx.spoolDir, 'data')
    await fs.rename(data, `${data}.saved`)
    await fs.writeFile(data, 'not a directory\n')
    try {
      const broken = await healthz(port)
      assert.equal(broken.code, 503, JSON.stringify(broken.body))
      assert.equal(broken.body.status, 'fail')
      assert.equal(broken.body.service, 'smtp-ingress')
      assert.equal(broken.body.checks.spool.status, 'fail')
      assert.match(broken.body.checks.spool.detail ?? '', /spool\/data/)
      assert.deepEqual(
        Object.entries(broken.body.checks)
          .filter(([, c]) => c.status === 'fail')
          .map(([name]) => name),
        ['spool'],
      )
    } finally {
      await fs.rm(data)
      await fs.rename(`${data}.saved`, data)
    }
    const back = await healthz(port)
    assert.equal(back.code, 200)
    assert.equal(back.body.checks.spool.status, 'ok')
  })

  test('delivery /healthz answers 503 naming the mailboxes check while the mail directory is missing', async () => {
    const port = mx.port('delivery', 'health')
    assert.equal((await healthz(port)).code, 200)
    await fs.rename(mx.mailDir, `${mx.mailDir}.gone`)
    try {
      const broken = await healthz(port)
      assert.equal(broken.code, 503)
      assert.equal(broken.body.service, 'delivery')
      assert.equal(broken.body.checks.mailboxes.status, 'fail')
      assert.match(broken.body.checks.mailboxes.detail ?? '', /ENOENT/)
      assert.equal(broken.body.checks.spool.status, 'ok')
    } finally {
      await fs.rename(`${mx.mailDir}.gone`, mx.mailDir)
    }
    const back = await healthz(port)
    assert.equal(back.code, 200)
    assert.equal(back.body.checks.mailboxes.status, 'ok')
  })

  test('mailctl user add --password-stdin stores a {BLF-CRYPT} hash the running services accept at once', async () => {
    assert.equal(await rcpt(smtpPort, 'bob@ours.example'), '550 5.1.1 No such user here')
    const r = await mailctl(['user', 'add', 'bob@ours.example', '--password-stdin'], 'correct horse battery\n')
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.equal(r.stdout, 'added bob@ours.example\n')
    assert.match(await rcpt(smtpPort, 'bob@ours.example'), /^250 /)
    const users = await fs.readFile(path.join(mx.configDir, 'users'), 'utf8')
    const line = users.split('\n').find((l) => l.startsWith('bob@ours.example:'))
    const hash = /^bob@ours\.example:\{BLF-CRYPT\}(\$2[aby]\$10\$[./A-Za-z0-9]{53})$/.exec(line ?? '')?.[1]
    assert.ok(hash, `a bcrypt hash, not ${line}`)
    assert.ok(!users.includes('correct horse battery'))
    assert.ok(await bcrypt.compare('correct horse battery', hash))
    assert.ok(!(await bcrypt.compare('wrong horse battery', hash)))
    assert.match(users, /^alice@ours\.example:\{PLAIN\}pw-alice-1$/m, 'the other users are kept')
    // The submission service authenticates against the same file, with that hash.
    const auth = await swaksSubmit(mx.port('submission', 'submission'), 'bob@ours.example', 'correct horse battery', [
      '--quit-after',
      'AUTH',
      '--timeout',
      '20',
    ])
    assert.equal(auth.code, 0, auth.stdout + auth.stderr)
  })

  test('mailctl alias add routes to the user at once; user del removes the user at once', async () => {
    const added = await mailctl(['alias', 'add', 'sales@ours.example', 'bob@ours.example'])
    assert.equal(added.code, 0, added.stdout + added.stderr)
    assert.equal(added.stdout, 'sales@ours.example: bob@ours.example\n')
    const r = await sendMail(smtpPort, {
      from: 'sender@remote.example',
      to: ['sales@ours.example'],
      data: 'Subject: via alias\r\n\r\nhello sales\r\n',
    })
    assert.match(r.message ?? '', /^250 /, JSON.stringify(r))
    const [m] = await waitForCount(
      async () => (await readMbox(path.join(mx.mailDir, 'bob'))).filter((x) => x.includes('Subject: via alias')),
      1,
    )
    assert.match(m, /^Return-Path: <sender@remote\.example>\nDelivered-To: bob@ours\.example\n/)

    const deleted = await mailctl(['user', 'del', 'bob@ours.example'])
    assert.equal(deleted.code, 0, deleted.stdout + deleted.stderr)
    assert.equal(deleted.stdout, 'deleted bob@ours.example (the mailbox is kept)\n')
    assert.equal(await rcpt(smtpPort, 'bob@ours.example'), '550 5.1.1 No such user here')
    assert.doesNotMatch(await fs.readFile(path.join(mx.configDir, 'users'), 'utf8'), /^bob@/m)
    const list = await mailctl(['user', 'list'])
    assert.equal(list.stdout, 'alice@ours.example\n')
    const again = await mailctl(['user', 'del', 'bob@ours.example'])
    assert.equal(again.code, 64)
    assert.equal(again.stderr, 'mailctl: no such user: bob@ours.example\n')
  })

  test('mailctl queue list shows a message deferred by a greylisting remote host; queue flush sends it now', async () => {
    const remote = await listenMx(remotePort)
    try {
      remote.greylist = true
      // TRUSTED_NETWORKS=127.0.0.1 may relay through :25.
      const r = await sendMail(smtpPort, {
        from: 'alice@ours.example',
        to: ['pal@remote.example'],
        data: 'Subject: waiting\r\n\r\nfor the remote host\r\n',
      })
      assert.match(r.message ?? '', /^250 2\.0\.0 Ok: queued as /, JSON.stringify(r))
      const id = /queued as (\w+)/.exec(r.message!)![1]
      const listed = await eventually(
        'queue list',
        () => mailctl(['queue', 'list']),
        (l) => /^ {4}deferred +pal@remote\.example/m.test(l.stdout),
        20_000,
      )
      assert.equal(listed.code, 0)
      // The next attempt is QUEUE_RETRY_MIN (5 minutes) away.
      const next = new RegExp(`^${id} queue \\d+B \\S+ <alice@ours\\.example> next (\\S+)$`, 'm').exec(listed.stdout)
      assert.ok(next, listed.stdout)
      assert.ok(Date.parse(next[1]) - Date.now() > 60_000, next[1])
      assert.match(listed.stdout, /^ {4}deferred +pal@remote\.example {2}\(451 4\.7\.1 Greylisted, try again later/m)
      assert.match(listed.stdout, /^1 message\(s\)$/m)
      assert.equal(remote.messages.length, 0)

      remote.greylist = false
      const flushed = await mailctl(['queue', 'flush'])
      assert.equal(flushed.code, 0, flushed.stdout + flushed.stderr)
      assert.equal(flushed.stdout, '1 message(s) due now\n')
      await waitFor('the remote host to receive it', async () => remote.messages.length === 1, {
        timeoutMs: 20_000,
        context: () => `${remote.messages.length} received\n${mx.output().slice(-4000)}`,
      })
      assert.deepEqual(remote.messages[0].to, ['pal@remote.example'])
      assert.match(remote.messages[0].data, /Subject: waiting/)
      await eventually(
        'queue list',
        () => mailctl(['queue', 'list']),
        (l) => l.code === 0 && l.stdout === '0 message(s)\n',
      )
    } finally {
      await remote.close()
    }
  })

  test('mailctl queue flush retries at once a host that refused connections before, as postqueue -f does', async () => {
    const r = await sendMail(smtpPort, {
      from: 'alice@ours.example',
      to: ['pal@down.example'],
      data: 'Subject: host down\r\n\r\nwaiting\r\n',
    })
    assert.match(r.message ?? '', /^250 /)
    await eventually(
      'queue list',
      () => mailctl(['queue', 'list']),
      (l) => /^ {4}deferred +pal@down\.example/m.test(l.stdout),
      20_000,
    )
    const remote = await listenMx(downPort)
    try {
      assert.equal((await mailctl(['queue', 'flush'])).stdout, '1 message(s) due now\n')
      // Its next attempt was QUEUE_RETRY_MIN (5 minutes) away: seconds mean the flush did it.
      await waitFor('the host, back up, to receive it', async () => remote.messages.length === 1, {
        timeoutMs: 10_000,
        context: () => `${remote.messages.length} received\n${mx.output().slice(-4000)}`,
      })
    } finally {
      await remote.close()
    }
  })
})

describe(
  'bad configuration stops start-up with one line naming the variable, the value and what is expected',
  { concurrency: true },
  () => {
    let dir: string
    before(async () => {
      dir = await tempDir('config-errors')
    })
    after(() => removeDir(dir))

    /** The environment of a service that would start: loopback, free ports, temp directories. */
    const env = (extra: Record<string, string | undefined>): NodeJS.ProcessEnv => {
      const e: Record<string, string | undefined> = {
        ...loopbackEnv(dir),
        ...extra,
      }
      for (const k of Object.keys(e)) if (e[k] === undefined) delete e[k]
      return e
    }
    const start = (entry: string, extra: Record<string, string | undefined>): Promise<RunResult> =>
      run(process.execPath, ['--import', 'tsx', '--conditions=source', entry], { cwd: ROOT, env: env(extra), timeoutMs: 90_000 })
    const ingress = (extra: Record<string, string | undefined>) => start('services/smtp-ingress/src/main.ts', extra)

    test('SMTP_PORT out of range', async () => {
      const r = await ingress({ SMTP_PORT: '70000' })
      assert.equal(r.code, 78)
      assert.equal(
        r.stderr,
        'facteur smtp-ingress: configuration error: SMTP_PORT="70000" is not valid: expected a port number from 0 to 65535 (0 picks a free port)\n',
      )
      assert.equal(r.stdout, '')
    })

    test('an unknown MAILBOX_FORMAT', async () => {
      const r = await ingress({ MAILBOX_FORMAT: 'mh' })
      assert.equal(r.code, 78)
      assert.match(
        r.stderr,
        /^facteur smtp-ingress: configuration error: MAILBOX_FORMAT="mh" is not valid: expected one of mbox, maildir\n$/,
      )
    })

    test('MAIL_DOMAIN missing', async () => {
      const r = await ingress({ MAIL_DOMAIN: undefined })
      assert.equal(r.code, 78)
      assert.match(r.stderr, /^facteur smtp-ingress: configuration error: MAIL_DOMAIN is not set: expected [^\n]+\n$/)
    })

    test('a MAILBOX_PATH without %d or %e for two LOCAL_DOMAINS', async () => {
      const r = await ingress({ LOCAL_DOMAINS: 'a.example,b.example', MAILBOX_PATH: '/var/mail/%u' })
      assert.equal(r.code, 78)
      assert.match(
        r.stderr,
        /^facteur smtp-ingress: configuration error: MAILBOX_PATH="\/var\/mail\/%u" is not valid: expected a template holding %d or %e, since LOCAL_DOMAINS names 2 domains[^\n]*\n$/,
      )
    })

    test('the supervisor (npm start) refuses a bad value the same way, before starting anything', async () => {
      const r = await start('services/supervisor/src/main.ts', { SMTP_PORT: '25x' })
      assert.equal(r.code, 78)
      assert.equal(
        r.stderr,
        'facteur supervisor: configuration error: SMTP_PORT="25x" is not valid: expected a port number from 0 to 65535 (0 picks a free port)\n',
      )
      assert.equal(r.stdout, '')
      // Nothing was started: no ports file, no spool.
      await assert.rejects(fs.access(path.join(dir, 'spool')))
    })
  },
)

test('SIGTERM drains: a message half sent is accepted and kept, new connections are refused, the supervisor exits 0 and reports its restarts', async (t) => {
  const mx = await startAppliance({ users: { 'alice@ours.example': 'pw-alice-1' } })
  const exited = new Promise<number | null>((resolve) => mx.supervisor.once('exit', (code) => resolve(code)))
  t.after(() => mx.stop()) // after the exit below: no second signal, only the process group's leftovers
  const port = mx.port('smtp-ingress', 'smtp')
  // One restart first, so the final report has something to count.
  const deliveryPid = await servicePid(mx, 'delivery')
  process.kill(deliveryPid, 'SIGKILL')
  await waitForRestart(mx, 'delivery', deliveryPid)

  const s = await smtpSession(port, { timeoutMs: 20_000 })
  await s.send('EHLO client.remote.example')
  assert.match(await s.send('MAIL FROM:<sender@remote.example>'), /^250 /)
  assert.match(await s.send('RCPT TO:<alice@ours.example>'), /^250 /)
  assert.match(await s.send('DATA'), /^354 /)
  const line = 'A line of the message that was in flight when SIGTERM came.\r\n'
  const message = dataBytes(`Subject: drained\r\n\r\n${line.repeat(2000)}`)
  const half = Math.floor(message.length / 2)
  s.write(message.subarray(0, half))
  await new Promise((r) => setTimeout(r, 300))

  mx.supervisor.kill('SIGTERM')
  await mx.waitForLog(/smtp-ingress info: stopping signal=SIGTERM/)
  // The listener closes at once: new clients are refused while the old session goes on.
  await eventually(
    'the SMTP port refuses connections',
    () => canConnect(port),
    (up) => !up,
    5000,
  )

  const reply = await s.sendRaw(message.subarray(half))
  assert.match(reply, /^250 2\.0\.0 Ok: queued as [0-9A-F]{21}$/)
  const id = /queued as (\w+)/.exec(reply)![1]
  // smtp-server answers any later command 421 (RFC 5321 §3.8) and closes: the drain is per transaction.
  assert.match(await s.send('QUIT'), /^421 /)
  await s.closed

  let timer: NodeJS.Timeout | undefined
  const code = await Promise.race([exited, new Promise<string>((r) => (timer = setTimeout(() => r('still running after 30 s'), 30_000)))])
  clearTimeout(timer)
  assert.equal(code, 0, mx.output())
  assert.match(mx.output(), /supervisor info: all services stopped restarts=1\b/)
  assert.equal(await canConnect(port), false)

  // On disk: delivered to the mailbox, or still queued (delivery was stopping too), whole either way.
  const delivered = (await readMbox(path.join(mx.mailDir, 'alice'))).filter((m) => m.includes(`id ${id}`))
  const queued = (await (await openSpool(mx.spoolDir)).content(id))?.toString('latin1') ?? null
  assert.ok(delivered.length === 1 || queued !== null, `message ${id} neither delivered nor queued`)
  const text = delivered[0] ?? queued!
  assert.equal(text.split('A line of the message that was in flight').length - 1, 2000)
})
