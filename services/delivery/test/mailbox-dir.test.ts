// delivery's mailboxes check: the check on its own, and the delivery service (process mode, as
// `npm start` runs it) answering /healthz 503 while its mail directory is not writable by it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { ROOT } from '../../../test/support/appliance.js'
import { httpGet } from '../../../test/support/supervisor.js'
import { checkMailboxDir } from '../src/mailbox-dir.js'

type Healthz = { status: string; checks: Record<string, { status: string; detail?: string }> }

test('the mailboxes check is ok for a writable directory and fails naming a missing one', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-mailbox-dir-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  assert.deepEqual(await checkMailboxDir(dir), { status: 'ok', detail: dir })
  const gone = path.join(dir, 'mail')
  assert.deepEqual(await checkMailboxDir(gone), { status: 'fail', detail: `mailbox directory ${gone} is missing (ENOENT)` })
})

test('delivery /healthz answers 503 naming the mail directory while it is not writable by its uid, 200 once it is again', async (t) => {
  // Root writes anywhere: the service runs as nobody here (as MAIL_UID 5000 does in the image).
  const root = process.getuid?.() === 0
  const uid = root ? 65534 : process.getuid!()
  const gid = root ? 65534 : process.getgid!()
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-mailbox-dir-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  const [configDir, spoolDir, mailDir] = ['config', 'spool', 'mail'].map((d) => path.join(dir, d))
  for (const d of [configDir, spoolDir, mailDir]) await fs.mkdir(d)
  for (const f of ['users', 'aliases']) await fs.writeFile(path.join(configDir, f), '')
  for (const p of [dir, configDir, spoolDir, mailDir, path.join(configDir, 'users'), path.join(configDir, 'aliases')])
    await fs.chown(p, uid, gid)

  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', 'services/delivery/src/main.ts'], {
    cwd: ROOT,
    uid,
    gid,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      ENV_FILE: '/dev/null',
      MAIL_DOMAIN: 'ours.example',
      CONFIG_DIR: configDir,
      SPOOL_DIR: spoolDir,
      MAIL_DIR: mailDir,
      MAIL_UID: String(uid),
      MAIL_GID: String(gid),
      HEALTH_LISTEN: '127.0.0.1',
      DELIVERY_HEALTH_PORT: '0',
      DNS_SERVERS: '127.0.0.1:9',
      LOG_FORMAT: 'json',
    },
  })
  let out = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr.on('data', (c: Buffer) => (out += c.toString()))
  const exited = new Promise((resolve) => child.once('exit', resolve))
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    await exited
    clearTimeout(timer)
  })

  // Its health port, from the `listening` log line.
  const deadline = Date.now() + 90_000
  let port = 0
  while (!port) {
    const line = out.split('\n').find((l) => l.includes('"listening"') && l.includes('"health"'))
    if (line) port = (JSON.parse(line) as { port: number }).port
    else if (child.exitCode !== null) assert.fail(`delivery exited with ${child.exitCode}:\n${out}`)
    else if (Date.now() > deadline) assert.fail(`delivery did not announce its health port:\n${out}`)
    else await new Promise((r) => setTimeout(r, 100))
  }
  const healthz = async (): Promise<{ code: number; body: Healthz }> => {
    const r = await httpGet(port, '/healthz')
    return { code: r.code, body: JSON.parse(r.body) as Healthz }
  }

  const ok = await healthz()
  assert.equal(ok.code, 200, JSON.stringify(ok.body))
  assert.deepEqual(ok.body.checks.mailboxes, { status: 'ok', detail: mailDir })
  await fs.chmod(mailDir, 0o555)
  const broken = await healthz()
  assert.equal(broken.code, 503, JSON.stringify(broken.body))
  assert.equal(broken.body.status, 'fail')
  assert.deepEqual(broken.body.checks.mailboxes, {
    status: 'fail',
    detail: `mailbox directory ${mailDir} is not writable by uid ${uid} (EACCES)`,
  })
  assert.equal(broken.body.checks.spool.status, 'ok')
  await fs.chmod(mailDir, 0o755)
  const back = await healthz()
  assert.equal(back.code, 200, JSON.stringify(back.body))
  assert.equal(back.body.checks.mailboxes.status, 'ok')
})
