// The appliance as users run it: `docker compose up` of the repository's docker-compose.yml
// (with test/docker-compose.test.yml: ports on 127.0.0.1, quick health checks, restart: "no"),
// real clamd and spamd sidecars, mail sent with swaks, the supervisor restarting what dies or
// hangs. Needs a Docker engine: before() runs ../shared/sandbox/docker-up when it exists, and
// every test is skipped, saying why, when no engine answers.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import { isIP } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { ROOT } from './support/appliance.js'
import { run, type RunResult } from './support/process.js'
import { swaks, lastReply } from './support/swaks.js'
import { httpGet } from './support/supervisor.js'
import { EICAR } from './support/clamd.js'

// Per run: two runs on one engine (a developer's and CI's) must not tear down each other's stack
// or swap each other's images. A run that died leaves its project; the next run removes it.
const PROJECT = `facteur-e2e-${process.pid}`
const TAG = `e2e-${process.pid}`
const DOCKER_UP = path.resolve(ROOT, '..', 'shared', 'sandbox', 'docker-up')
const SERVICES = ['smtp-ingress', 'submission', 'filter', 'delivery', 'supervisor', 'clamav', 'spamassassin']
const USER = 'alice@example.org'
const PASSWORD = 'correct horse battery'
// Nothing from the developer's shell or .env reaches the stack: test/docker-compose.test.env only.
const ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', FACTEUR_TAG: TAG }

let unavailable: string | null = null
let up = false
const started = Date.now()
const ports = { smtp: 0, submission: 0, status: 0 }
let dir = ''

const compose = (args: string[], options: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> =>
  run(
    'docker',
    [
      'compose',
      '-p',
      PROJECT,
      '--env-file',
      'test/docker-compose.test.env',
      '-f',
      'docker-compose.yml',
      '-f',
      'test/docker-compose.test.yml',
      ...args,
    ],
    {
      cwd: ROOT,
      env: ENV,
      timeoutMs: options.timeoutMs ?? 60_000,
      input: options.input,
    },
  )

async function composeOk(args: string[], options: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  const r = await compose(args, options)
  if (r.code !== 0)
    throw new Error(`docker compose ${args.join(' ')}: ${r.timedOut ? 'timed out' : `exit ${r.code}`}\n${r.stdout}${r.stderr}`)
  return r.stdout
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | null | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await new Promise((r) => setTimeout(r, 1000))
  }
}

type Health = {
  status: string
  restarts: number
  queue: { depth: number | null }
  services: Record<string, { state: string; restarts: number; health: { status: string }; lastRestart: { reason: string } | null }>
}
const health = async (): Promise<Health> => JSON.parse((await httpGet(ports.status, '/health')).body) as Health

async function publishedPort(service: string, port: number): Promise<number> {
  const out = (await composeOk(['port', service, String(port)])).trim()
  const p = Number(out.slice(out.lastIndexOf(':') + 1))
  assert.ok(p > 0, `no published port for ${service}:${port} (${out})`)
  return p
}

/** Stacks of earlier runs whose test process is gone (killed mid-run): down -v, images untagged. */
async function removeStaleProjects(): Promise<void> {
  const ps = await run('docker', [
    'ps',
    '-a',
    '--filter',
    'label=com.docker.compose.project',
    '--format',
    '{{.Label "com.docker.compose.project"}}',
  ])
  const stale = new Set(
    ps.stdout
      .split('\n')
      .map((p) => /^facteur-e2e-(\d+)$/.exec(p.trim()))
      .filter((m): m is RegExpExecArray => m !== null && !alive(Number(m[1])))
      .map((m) => m[1]),
  )
  for (const pid of stale) {
    await run(
      'docker',
      [
        'compose',
        '-p',
        `facteur-e2e-${pid}`,
        '--env-file',
        'test/docker-compose.test.env',
        '-f',
        'docker-compose.yml',
        '-f',
        'test/docker-compose.test.yml',
        'down',
        '-v',
        '--remove-orphans',
      ],
      {
        cwd: ROOT,
        env: { ...ENV, FACTEUR_TAG: `e2e-${pid}` },
        timeoutMs: 120_000,
      },
    )
    await untag(`e2e-${pid}`)
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Removes this run's tags; the layers stay cached for the next run. */
async function untag(tag: string): Promise<void> {
  await run('docker', ['rmi', '--no-prune', `facteur:${tag}`, `facteur-clamav:${tag}`, `facteur-spamassassin:${tag}`], {
    timeoutMs: 60_000,
  })
}

/** The JSON log lines of one service. */
async function logLines(service: string): Promise<Record<string, unknown>[]> {
  const out = await composeOk(['logs', '--no-color', service])
  return out
    .split('\n')
    .map((l) => l.slice(l.indexOf('|') + 1).trim())
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

before(async () => {
  if (process.platform !== 'linux') return void (unavailable = 'the compose test runs on Linux only')
  const which = await run('sh', ['-c', 'command -v docker'])
  if (which.code !== 0) return void (unavailable = 'no docker client on PATH')
  try {
    await fs.access(DOCKER_UP)
    const r = await run(DOCKER_UP, [], { cwd: ROOT, timeoutMs: 300_000 })
    if (r.code !== 0)
      return void (unavailable = `${DOCKER_UP} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ')}`)
  } catch {
    // No sandbox script: an engine the machine runs itself.
  }
  const info = await run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 20_000 })
  if (info.code !== 0) return void (unavailable = `no Docker engine answers: ${info.stderr.trim().split('\n')[0]}`)

  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-docker-'))
  await removeStaleProjects()
  // The five Node services share one image (facteur:TAG): build it through one of them.
  let t = Date.now()
  await composeOk(['build', 'smtp-ingress', 'clamav', 'spamassassin'], { timeoutMs: 900_000 })
  console.log(`# images built in ${seconds(Date.now() - t)}`)
  t = Date.now()
  up = true // from here on, after() takes the stack down whatever happens
  await composeOk(['up', '-d', '--no-build'], { timeoutMs: 600_000 })
  // Compose 1.29 has no `up --wait`: poll ps until every container says (healthy).
  await until('every container to be healthy', 300_000, async () => {
    const ps = await composeOk(['ps'])
    const rows = ps.split('\n').filter((l) => l.startsWith(`${PROJECT}_`) || l.startsWith(`${PROJECT}-`))
    return rows.length === SERVICES.length && rows.every((l) => l.includes('(healthy)'))
  })
  console.log(`# stack healthy ${seconds(Date.now() - t)} after docker compose up`)
  ports.smtp = await publishedPort('smtp-ingress', 25)
  ports.submission = await publishedPort('submission', 587)
  ports.status = await publishedPort('supervisor', 8080)
  const added = await composeOk(['exec', '-T', 'supervisor', 'mailctl', 'user', 'add', USER, '--password-stdin'], {
    input: `${PASSWORD}\n`,
  })
  assert.match(added, /added alice@example\.org/)
})

after(async () => {
  if (!up) {
    if (!unavailable) await untag(TAG)
    return
  }
  const stats = await run('docker', ['stats', '--no-stream', '--format', '{{.Name}}\t{{.MemUsage}}'], { timeoutMs: 60_000 })
  const mine = stats.stdout.split('\n').filter((l) => l.startsWith(`${PROJECT}_`) || l.startsWith(`${PROJECT}-`))
  const mib = mine.reduce((n, l) => {
    const m = /([\d.]+)\s*(KiB|MiB|GiB)/.exec(l.split('\t')[1] ?? '')
    return n + (m ? Number(m[1]) * { KiB: 1 / 1024, MiB: 1, GiB: 1024 }[m[2] as 'KiB' | 'MiB' | 'GiB'] : 0)
  }, 0)
  console.log(`# memory: ${mib.toFixed(0)} MiB in all\n${mine.map((l) => `#   ${l.replace('\t', ': ')}`).join('\n')}`)
  const down = await compose(['down', '-v', '--remove-orphans'], { timeoutMs: 180_000 })
  if (down.code !== 0) console.log(`# docker compose down -v failed:\n${down.stderr}`)
  await untag(TAG)
  if (dir) await fs.rm(dir, { recursive: true, force: true })
  console.log(`# compose test took ${seconds(Date.now() - started)}`)
})

test('docker compose config is valid, and the services do not run as root', async (t) => {
  if (unavailable) return t.skip(unavailable)
  assert.equal((await compose(['config', '-q'])).code, 0)
  for (const service of ['smtp-ingress', 'submission', 'filter', 'delivery'])
    assert.equal((await composeOk(['exec', '-T', service, 'id', '-u'])).trim(), '5000', service)
  // The supervisor's container starts as root to join the Docker socket's group, then drops.
  const supervisor = await logLines('supervisor')
  assert.ok(
    supervisor.some((l) => l.message === "running as the mail user, in the Docker socket's group" && l.uid === 5000),
    'supervisor dropped to uid 5000',
  )
})

test('a message to :25 lands in the mail volume; the ingress logs the client address Docker showed it', async (t) => {
  if (unavailable) return t.skip(unavailable)
  const out = await swaks([
    '--server',
    `127.0.0.1:${ports.smtp}`,
    '--from',
    'bob@remote.example',
    '--to',
    USER,
    '--header',
    'Subject: over port 25',
    '--timeout',
    '30',
  ])
  assert.match(lastReply(out, '.') ?? '', /^250 2\.0\.0 Ok: queued as /, out.stdout)
  const mbox = await until('the message in /var/mail/alice', 30_000, async () => {
    const r = await compose(['exec', '-T', 'delivery', 'cat', '/var/mail/alice'])
    return r.code === 0 && r.stdout.includes('Subject: over port 25') ? r.stdout : null
  })
  assert.match(mbox, /^Delivered-To: alice@example\.org$/m)
  const lines = await logLines('smtp-ingress')
  const queued = lines.find((l) => l.message === 'queued' && (l.recipients as string[]).includes(USER))
  const remoteIp = String(queued?.remoteIp)
  assert.ok(isIP(remoteIp), `queued line with remoteIp: ${JSON.stringify(queued)}`)
  const gateway = lines.find((l) => typeof l.gateway === 'string')?.gateway
  t.diagnostic(`the ingress logged the client 127.0.0.1 as ${remoteIp} (its bridge gateway: ${String(gateway)})`)
  console.log(`# swaks on 127.0.0.1 reached the ingress as ${remoteIp}; the bridge gateway is ${String(gateway)}`)
})

test('a message through 587 with STARTTLS and AUTH is delivered too', async (t) => {
  if (unavailable) return t.skip(unavailable)
  const out = await swaks([
    '--server',
    `127.0.0.1:${ports.submission}`,
    '--tls',
    '--auth',
    'PLAIN',
    '--auth-user',
    USER,
    '--auth-password',
    PASSWORD,
    '--from',
    USER,
    '--to',
    USER,
    '--header',
    'Subject: over port 587',
    '--timeout',
    '30',
  ])
  assert.match(lastReply(out, 'AUTH') ?? '', /^235 /, out.stdout)
  assert.match(lastReply(out, '.') ?? '', /^250 /, out.stdout)
  await until('the submitted message in /var/mail/alice', 30_000, async () => {
    const r = await compose(['exec', '-T', 'delivery', 'cat', '/var/mail/alice'])
    return r.code === 0 && r.stdout.includes('Subject: over port 587')
  })
})

test('EICAR is refused 554 5.7.1 by the real clamd, GTUBE 550 5.7.1 by the real spamd', async (t) => {
  if (unavailable) return t.skip(unavailable)
  const file = path.join(dir, 'eicar.com')
  await fs.writeFile(file, EICAR)
  const virus = await swaks([
    '--server',
    `127.0.0.1:${ports.smtp}`,
    '--from',
    'bob@remote.example',
    '--to',
    USER,
    '--attach',
    `@${file}`,
    '--timeout',
    '30',
  ])
  assert.match(lastReply(virus, '.') ?? '', /^554 5\.7\.1 Virus found: Eicar-Test-Signature/, virus.stdout)
  const gtube = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
  const spam = await swaks([
    '--server',
    `127.0.0.1:${ports.smtp}`,
    '--from',
    'bob@remote.example',
    '--to',
    USER,
    '--body',
    gtube,
    '--timeout',
    '30',
  ])
  assert.match(lastReply(spam, '.') ?? '', /^550 5\.7\.1 /, spam.stdout)
})

test('the supervisor brings back a killed filter and a hung delivery; /health and /metrics count the restarts', async (t) => {
  if (unavailable) return t.skip(unavailable)
  const before = await health()
  assert.notEqual(before.status, 'fail', JSON.stringify(before))

  let t0 = Date.now()
  await composeOk(['kill', 'filter'])
  const filter = await until('the filter restarted and healthy', 90_000, async () => {
    const s = (await health()).services.filter
    return s?.restarts > before.services.filter.restarts &&
      s.state === 'running' &&
      s.health.status !== 'fail' &&
      s.health.status !== 'starting'
      ? s
      : null
  })
  assert.match(filter.lastRestart?.reason ?? '', /exited with code 137/)
  console.log(`# killed filter back in ${seconds(Date.now() - t0)}: ${filter.lastRestart?.reason}`)

  // SIGSTOP every process of the delivery container but its init: it still runs, answers nothing.
  t0 = Date.now()
  await composeOk(['exec', '-T', 'delivery', 'sh', '-c', 'kill -STOP -1'])
  const delivery = await until('delivery restarted and healthy', 120_000, async () => {
    const s = (await health()).services.delivery
    return s?.restarts > before.services.delivery.restarts && s.state === 'running' && s.health.status === 'ok' ? s : null
  })
  assert.match(delivery.lastRestart?.reason ?? '', /^unhealthy for 3 polls in a row/)
  console.log(`# hung delivery back in ${seconds(Date.now() - t0)}: ${delivery.lastRestart?.reason}`)

  const after = await health()
  assert.ok(after.restarts >= before.restarts + 2)
  assert.equal(typeof after.queue.depth, 'number')
  const metrics = (await httpGet(ports.status, '/metrics')).body
  const value = (re: RegExp): number => Number(re.exec(metrics)?.[1] ?? NaN)
  assert.ok(value(/^facteur_restarts_total\{service="filter"\} (\d+)$/m) >= 1, metrics)
  assert.ok(value(/^facteur_restarts_total\{service="delivery"\} (\d+)$/m) >= 1, metrics)
  assert.ok(value(/^facteur_messages_received_total\{service="smtp-ingress"\} (\d+)$/m) >= 1, metrics)
  assert.ok(value(/^facteur_messages_received_total\{service="submission"\} (\d+)$/m) >= 1, metrics)
  assert.ok(value(/^facteur_virus_verdicts_total\{result="infected"\} (\d+)$/m) >= 1, metrics)
  assert.ok(value(/^facteur_deliveries_total\{outcome="delivered"\} (\d+)$/m) >= 2, metrics)
  assert.match(metrics, /^facteur_queue_depth \d+$/m)
})

test('the status page shows every service at a glance', async (t) => {
  if (unavailable) return t.skip(unavailable)
  const page = await httpGet(ports.status, '/')
  assert.equal(page.code, 200)
  for (const service of SERVICES.filter((s) => s !== 'supervisor'))
    assert.match(page.body, new RegExp(`data-service="${service}"`), service)
})
