// The appliance as users run it: `docker compose up` of the repository's docker-compose.yml
// (with test/docker-compose.test.yml: ports on 127.0.0.1, quick health checks, restart: "no"),
// real clamd and spamd sidecars, mail sent with swaks (also through the PROXY protocol), the
// supervisor restarting what dies or turns unhealthy, its status page in headless chromium.
// Needs a Docker engine: before() runs ../shared/sandbox/docker-up when it exists, and every
// test is skipped, saying why, when no engine answers.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import net, { isIP } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { processAlive } from '@facteur/lifecycle'
import { ROOT } from './support/appliance.js'
import { run, type RunResult } from './support/process.js'
import { swaks, lastReply } from './support/swaks.js'
import { httpGet } from './support/supervisor.js'
import { EICAR } from './support/clamd.js'
import { browserUnavailable, renderStatusPage } from './support/browser.js'

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
/** The bridge gateway the ingress logged at start: what every client of a published port looks like to it here. */
let gateway = ''

type ComposeOptions = { timeoutMs?: number; input?: string; env?: Record<string, string> }
const compose = (args: string[], options: ComposeOptions = {}): Promise<RunResult> =>
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
      env: { ...ENV, ...options.env },
      timeoutMs: options.timeoutMs ?? 60_000,
      input: options.input,
    },
  )

async function composeOk(args: string[], options: ComposeOptions = {}): Promise<string> {
  const r = await compose(args, options)
  if (r.code !== 0)
    throw new Error(`docker compose ${args.join(' ')}: ${r.timedOut ? 'timed out' : `exit ${r.code}`}\n${r.stdout}${r.stderr}`)
  return r.stdout
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined | null | false>,
  intervalMs = 1000,
): Promise<T> {
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
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

type Health = {
  status: string
  restarts: number
  queue: { depth: number | null }
  services: Record<
    string,
    {
      state: string
      restarts: number
      engineHealth: string | null
      health: { status: string }
      lastRestart: { at: string; reason: string } | null
    }
  >
}
const health = async (): Promise<Health> => JSON.parse((await httpGet(ports.status, '/health')).body) as Health

async function publishedPort(service: string, port: number): Promise<number> {
  const out = (await composeOk(['port', service, String(port)])).trim()
  const p = Number(out.slice(out.lastIndexOf(':') + 1))
  assert.ok(p > 0, `no published port for ${service}:${port} (${out})`)
  return p
}

/** Docker's HEALTHCHECK state of a container: its verdict and the last probes' exit codes and output. */
async function engineHealth(container: string): Promise<{ Status: string; Log: { ExitCode: number; Output: string }[] } | null> {
  const r = await run('docker', ['inspect', '--format', '{{json .State.Health}}', container], { timeoutMs: 30_000 })
  return r.code === 0 ? (JSON.parse(r.stdout) as { Status: string; Log: { ExitCode: number; Output: string }[] }) : null
}

/** The first bytes the ingress answers to `line` sent as the first thing on a new connection. */
function firstAnswer(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const socket = net.connect(port, '127.0.0.1', () => socket.write(line))
    socket.setTimeout(30_000, () => socket.destroy(new Error(`no answer on ${port} within 30 s (got ${JSON.stringify(text)})`)))
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')))
    socket.on('error', reject)
    socket.on('close', () => resolve(text))
  })
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
      .filter((m): m is RegExpExecArray => m !== null && !processAlive(Number(m[1])))
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

/** swaks on the published 587: STARTTLS, then AUTH PLAIN as `user`. */
const swaksAuth = (user: string, password: string, more: string[]): ReturnType<typeof swaks> =>
  swaks([
    '--server',
    `127.0.0.1:${ports.submission}`,
    '--tls',
    '--auth',
    'PLAIN',
    '--auth-user',
    user,
    '--auth-password',
    password,
    ...more,
  ])

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
  // The file as users run it, without any .env: valid on its own too.
  const noEnv = path.join(dir, 'empty.env')
  await fs.writeFile(noEnv, '')
  const plain = await run('docker', ['compose', '--env-file', noEnv, '-f', 'docker-compose.yml', 'config', '-q'], {
    cwd: ROOT,
    env: ENV,
    timeoutMs: 60_000,
  })
  assert.equal(plain.code, 0, plain.stderr)
  const uids = await Promise.all(
    ['smtp-ingress', 'submission', 'filter', 'delivery'].map(async (service) => [
      service,
      (await composeOk(['exec', '-T', service, 'id', '-u'])).trim(),
    ]),
  )
  assert.deepEqual(Object.fromEntries(uids), { 'smtp-ingress': '5000', submission: '5000', filter: '5000', delivery: '5000' })
  // The supervisor's container starts as root to join the Docker socket's group, then drops.
  const supervisor = await logLines('supervisor')
  assert.ok(
    supervisor.some((l) => l.message === "running as the mail user, in the Docker socket's group" && l.uid === 5000),
    'supervisor dropped to uid 5000',
  )
})

test('a message to :25 lands in the mail volume; the ingress logs the client address Docker showed it, and listens through 4 sockets', async (t) => {
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
  // Scanned by the sidecar's spamd, which does not trust the address the MX saw (the gateway
  // when Docker's userland proxy carried it): no ALL_TRUSTED (SPAMD_TRUSTED_NETWORKS).
  assert.match(mbox, /^X-Spam-Status: (No|Yes), score=/m)
  assert.doesNotMatch(mbox, /ALL_TRUSTED/)
  const lines = await logLines('smtp-ingress')
  const queued = lines.find((l) => l.message === 'queued' && (l.recipients as string[]).includes(USER))
  const remoteIp = String(queued?.remoteIp)
  assert.ok(isIP(remoteIp), `queued line with remoteIp: ${JSON.stringify(queued)}`)
  gateway = String(lines.find((l) => typeof l.gateway === 'string')?.gateway ?? '')
  t.diagnostic(`the ingress logged the client 127.0.0.1 as ${remoteIp} (its bridge gateway: ${gateway})`)
  console.log(`# swaks on 127.0.0.1 reached the ingress as ${remoteIp}; the bridge gateway is ${gateway}`)
  // The image's Node 22 shares :25 between 4 sockets (SO_REUSEPORT, packages/reception/src/listen.ts):
  // the container's listening TCP sockets (state 0A) on port 25 (0019), IPv4 and IPv6.
  const tables = await composeOk(['exec', '-T', 'smtp-ingress', 'cat', '/proc/net/tcp', '/proc/net/tcp6'])
  const on25 = tables.split('\n').filter((l) => /^\s*\d+: [0-9A-F]+:0019 [0-9A-F]+:0000 0A /.test(l))
  assert.equal(on25.length, 4, tables)
})

test('a message through 587 with STARTTLS and AUTH is delivered too', async (t) => {
  if (unavailable) return t.skip(unavailable)
  const out = await swaksAuth(USER, PASSWORD, ['--from', USER, '--to', USER, '--header', 'Subject: over port 587', '--timeout', '30'])
  assert.match(lastReply(out, 'AUTH') ?? '', /^235 /, out.stdout)
  assert.match(lastReply(out, '.') ?? '', /^250 /, out.stdout)
  await until('the submitted message in /var/mail/alice', 30_000, async () => {
    const r = await compose(['exec', '-T', 'delivery', 'cat', '/var/mail/alice'])
    return r.code === 0 && r.stdout.includes('Subject: over port 587')
  })
})

test("behind Docker's userland proxy (every client from the bridge gateway) a stranger's failed AUTHs do not lock the users out", async (t) => {
  if (unavailable) return t.skip(unavailable)
  const auth = async (user: string, password: string): Promise<string> => {
    const out = await swaksAuth(user, password, ['--quit-after', 'AUTH', '--timeout', '30'])
    return lastReply(out, 'AUTH') ?? out.stdout
  }
  // Whether clients come through the userland proxy here: the ingress logs its gateway, and
  // submission saw the earlier test's client as that address.
  const gw = String((await logLines('smtp-ingress')).find((l) => typeof l.gateway === 'string')?.gateway)
  const lines = await logLines('submission')
  const seen = String(lines.find((l) => l.message === 'authenticated' && l.user === USER)?.remoteIp)
  if (seen !== gw) return t.skip(`submission saw the client as ${seen}, not as the bridge gateway ${gw}: no userland proxy here`)
  assert.equal(lines.find((l) => typeof l.gateway === 'string')?.gateway, gw, 'submission logged the gateway at start')
  // SUBMISSION_AUTH_BAN_FAILURES (10) guesses at names nobody has, all from the gateway.
  for (let i = 0; i < 10; i++) assert.match(await auth(`nobody-${i}@example.org`, 'guess'), /^535 5\.7\.8 /)
  assert.match(await auth(USER, PASSWORD), /^235 /, 'the user still gets in')
  console.log(`# 10 failed AUTHs through ${gw} (the gateway every client comes from here), then ${USER} authenticated`)
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

test('behind a front proxy (PROXY_TRUSTED: the bridge gateway) the ingress logs, filters and relays by the address in the PROXY header', async (t) => {
  if (unavailable) return t.skip(unavailable)
  assert.ok(isIP(gateway), `the ingress logged its bridge gateway (${gateway})`)
  const quote = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
  // TRUSTED_NETWORKS holding the gateway would let every client of the published port relay: a
  // one-off ingress told so exits 78. Meanwhile, as a user would: the gateway the ingress logged
  // into .env, then `docker compose up -d`, which recreates the ingress only. TRUSTED_NETWORKS is
  // there to show whose address the policy sees (a client in it may relay, and its mail counts
  // as outbound: no SPF check then).
  // One after the other: with both at once, `up` has been seen to pick the one-off container
  // while `run --rm` removed it ("container is marked for removal").
  const t0 = Date.now()
  const refused = await compose(['run', '--rm', '--no-deps', '-T', '-e', `TRUSTED_NETWORKS=${gateway}/32`, 'smtp-ingress'], {
    timeoutMs: 120_000,
  })
  await composeOk(['up', '-d', '--no-deps', '--no-build', 'smtp-ingress'], {
    env: { PROXY_TRUSTED: gateway, TRUSTED_NETWORKS: '198.51.100.0/24' },
    timeoutMs: 180_000,
  })
  assert.equal(refused.code, 78, `${refused.stdout}${refused.stderr}`)
  assert.match(
    `${refused.stdout}${refused.stderr}`,
    new RegExp(
      `configuration error: TRUSTED_NETWORKS="${quote(gateway)}/32" is not valid: expected networks without ${quote(gateway)}, the Docker bridge gateway`,
    ),
  )
  await until('the recreated ingress to be healthy', 180_000, async () => (await composeOk(['ps', 'smtp-ingress'])).includes('(healthy)'))
  ports.smtp = await publishedPort('smtp-ingress', 25)
  console.log(`# ingress recreated with PROXY_TRUSTED=${gateway}, healthy in ${seconds(Date.now() - t0)}`)

  // Documentation addresses (RFC 5737): only in the header, no traffic goes there.
  const proxied = (source: string, args: string[]) =>
    swaks([
      '--server',
      `127.0.0.1:${ports.smtp}`,
      '--proxy-version',
      '1',
      '--proxy-family',
      'TCP4',
      '--proxy-source',
      source,
      '--proxy-source-port',
      '40000',
      '--proxy-dest',
      '127.0.0.1',
      '--proxy-dest-port',
      '25',
      '--from',
      'bob@remote.example',
      '--timeout',
      '30',
      ...args,
    ])
  const out = await proxied('192.0.2.10', ['--to', USER, '--header', 'Subject: through a front proxy'])
  const queuedReply = lastReply(out, '.') ?? ''
  assert.match(queuedReply, /^250 2\.0\.0 Ok: queued as /, out.stdout)
  const queueId = queuedReply.split(' ').pop()
  const mbox = await until('the proxied message in /var/mail/alice', 30_000, async () => {
    const r = await compose(['exec', '-T', 'delivery', 'cat', '/var/mail/alice'])
    return r.code === 0 && r.stdout.includes('Subject: through a front proxy') ? r.stdout : null
  })
  const message = mbox.slice(Math.max(0, mbox.lastIndexOf('\nFrom ', mbox.indexOf('Subject: through a front proxy'))))
  assert.match(message, /^Received: from \S+ \(\S* ?\[192\.0\.2\.10\]\)/m, message)
  const queued = (await logLines('smtp-ingress')).find((l) => l.message === 'queued' && l.queueId === queueId)
  assert.equal(queued?.remoteIp, '192.0.2.10', JSON.stringify(queued))
  // The filter checked SPF, DKIM and DMARC for that address (no DNS here: SPF says temperror or none).
  const verdict = (await logLines('filter')).find((l) => l.message === 'verdict' && l.queueId === queueId)
  assert.equal(verdict?.remoteIp, '192.0.2.10', JSON.stringify(verdict))
  assert.equal(verdict?.direction, 'inbound', JSON.stringify(verdict))
  assert.equal(typeof verdict?.spf, 'string', JSON.stringify(verdict))

  // TRUSTED_NETWORKS is decided on the header's address: 198.51.100.7 may relay, 192.0.2.10 may not.
  const relay = ['--to', 'carol@elsewhere.example', '--quit-after', 'RCPT']
  assert.match(lastReply(await proxied('198.51.100.7', relay), 'RCPT') ?? '', /^250 /)
  assert.match(lastReply(await proxied('192.0.2.10', relay), 'RCPT') ?? '', /^554 5\.7\.1 Relay access denied/)
  // From the gateway, a connection without the header is not served.
  assert.match(await firstAnswer(ports.smtp, 'EHLO client.example\r\n'), /Invalid PROXY header/)
  console.log(
    `# a client sending "PROXY TCP4 192.0.2.10 ..." through ${gateway} was logged as ${String(queued?.remoteIp)}, filtered as ${String(verdict?.remoteIp)} (spf=${String(verdict?.spf)})`,
  )
})

// A hung service (SIGSTOP: /healthz never answers) is restarted the same way: process mode in
// test/durability.test.ts, the supervisor's "no answer" path in services/supervisor/test.
test('the supervisor brings back a killed filter and a delivery made unhealthy by an unwritable mail directory; /health and /metrics count the restarts', async (t) => {
  if (unavailable) return t.skip(unavailable)
  const before = await health()
  assert.notEqual(before.status, 'fail', JSON.stringify(before))
  const restartsCounted = async (): Promise<Record<string, number>> => {
    const metrics = (await httpGet(ports.status, '/metrics')).body
    return Object.fromEntries(
      [...metrics.matchAll(/^facteur_restarts_total\{service="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]),
    )
  }
  const countedBefore = await restartsCounted()

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

  // The mail volume made unwritable for the mail user: delivery's /healthz answers 503 naming it,
  // Docker's HEALTHCHECK calls the container unhealthy (and leaves it so), the supervisor restarts it.
  t0 = Date.now()
  const container = (await composeOk(['ps', '-q', 'delivery'])).trim()
  await composeOk(['exec', '-T', '-u', '0', 'delivery', 'chmod', '0555', '/var/mail'])
  const docker = await until(
    "Docker's health check of delivery to fail",
    60_000,
    async () => {
      const h = await engineHealth(container)
      const failed = h?.Log.find((l) => l.ExitCode !== 0 && l.Output.includes('/var/mail'))
      return h && failed ? { status: h.Status, output: failed.Output.trim() } : null
    },
    250,
  )
  // test/docker-compose.test.yml: delivery's health check has retries: 1, so one failure decides.
  assert.equal(docker.status, 'unhealthy', docker.output)
  assert.match(docker.output, /^503 .*mailbox directory \/var\/mail is not writable by uid 5000 \(EACCES\)/)
  // lastRestart is set once Docker has restarted it (the count goes up when the restart is asked).
  const unwritable = await until('delivery restarted for its mail directory', 90_000, async () => {
    const s = (await health()).services.delivery
    return s?.restarts > before.services.delivery.restarts && s.lastRestart && Date.parse(s.lastRestart.at) >= t0 - 1000 ? s : null
  })
  assert.equal(
    unwritable.lastRestart?.reason,
    // SUPERVISOR_UNHEALTHY_AFTER is 5 in test/docker-compose.test.yml.
    'unhealthy for 5 polls in a row: mailboxes: mailbox directory /var/mail is not writable by uid 5000 (EACCES)',
  )
  console.log(
    `# Docker said ${docker.status}; the supervisor restarted delivery after ${seconds(Date.now() - t0)}: ${unwritable.lastRestart?.reason}`,
  )
  // Writable again (the container may be restarting: exec until it runs): healthy for both again.
  await until('the mail directory writable again', 60_000, async () => {
    const r = await compose(['exec', '-T', '-u', '0', 'delivery', 'chmod', '0755', '/var/mail'])
    return r.code === 0
  })
  const restored = await until('delivery healthy again', 120_000, async () => {
    const s = (await health()).services.delivery
    return s?.state === 'running' && s.health.status === 'ok' && s.engineHealth === 'healthy' ? s : null
  })
  console.log(`# delivery healthy again ${seconds(Date.now() - t0)} after the chmod (Docker: ${String(restored.engineHealth)})`)

  // Each restart counted: in /health (per service and in all) and in /metrics.
  const after = await health()
  assert.ok(after.services.filter.restarts >= before.services.filter.restarts + 1, JSON.stringify(after.services.filter))
  assert.ok(after.services.delivery.restarts >= before.services.delivery.restarts + 1, JSON.stringify(after.services.delivery))
  assert.ok(after.restarts >= before.restarts + 2, JSON.stringify(after))
  assert.equal(typeof after.queue.depth, 'number')
  const counted = await restartsCounted()
  assert.ok(counted.filter >= (countedBefore.filter ?? 0) + 1, JSON.stringify({ countedBefore, counted }))
  assert.ok(counted.delivery >= (countedBefore.delivery ?? 0) + 1, JSON.stringify({ countedBefore, counted }))
  const metrics = (await httpGet(ports.status, '/metrics')).body
  const value = (re: RegExp): number => Number(re.exec(metrics)?.[1] ?? NaN)
  assert.ok(value(/^facteur_messages_received_total\{service="smtp-ingress"\} (\d+)$/m) >= 1, metrics)
  assert.ok(value(/^facteur_messages_received_total\{service="submission"\} (\d+)$/m) >= 1, metrics)
  assert.ok(value(/^facteur_virus_verdicts_total\{result="infected"\} (\d+)$/m) >= 1, metrics)
  assert.ok(value(/^facteur_deliveries_total\{outcome="delivered"\} (\d+)$/m) >= 2, metrics)
  assert.match(metrics, /^facteur_queue_depth \d+$/m)
})

test('the status page shows every service with its status in a real browser (chromium); a screenshot is kept', async (t) => {
  if (unavailable) return t.skip(unavailable)
  const page = await httpGet(ports.status, '/')
  assert.equal(page.code, 200)
  for (const service of SERVICES) assert.match(page.body, new RegExp(`data-service="${service}"`), service)
  const why = await browserUnavailable()
  if (why) return t.skip(why)

  const shown = await renderStatusPage(`http://127.0.0.1:${ports.status}/`, 'status-page')
  console.log(`# screenshot of the compose stack's status page: ${shown.screenshot}`)
  assert.match(shown.title, /^Facteur .*: (ok|degraded)$/)
  assert.deepEqual(shown.rows.map((r) => r.service).sort(), [...SERVICES].sort())
  for (const row of shown.rows) {
    assert.ok(row.visible, `${row.service} row on screen`)
    // Docker's own verdict beside each container's state (the supervisor serves the page).
    assert.match(row.state, row.service === 'supervisor' ? /^running/ : /^running \(Docker: healthy\)/, JSON.stringify(row))
    assert.match(row.badge, /^(ok|degraded)$/, JSON.stringify(row))
  }
  // The restarts of the test above, as a person reads them.
  for (const service of ['filter', 'delivery']) {
    const row = shown.rows.find((r) => r.service === service)!
    assert.ok(Number(row.restarts.split(/\s/)[0]) >= 1, JSON.stringify(row))
  }
})
