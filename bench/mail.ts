// Benchmark (not a test): Facteur against a real Postfix on the same machine, in the same run,
// both delivering with fsync into Maildirs, then into mbox files (our default). Every row is driven by smtp-source (throughput),
// then by our load client (bench/smtp-load.ts: time from the end of DATA to the 250), Postfix
// first then us, row after row, so a drift of the machine's speed hits both. Then the same
// with the content filter on (clamd + spamd) against those engines called directly, and the
// memory of 1,000 idle connections. Prints the tables and writes BENCHMARKS.md (a whole run only).
//   npm run bench [-- --quick] [--format=maildir|mbox] [--only=ROW] [--no-filter | --filters-only]
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { startAppliance, ROOT, type Appliance } from '../test/support/appliance.js'
import { applianceHealth } from '../test/support/supervisor.js'
import {
  startLocalPostfix,
  countMaildirs,
  mboxCounter,
  BENCHMARK_TUNING,
  MBOX_TUNING,
  type LocalPostfix,
  type MailboxFormat,
} from '../test/support/postfix-local.js'
import { run } from '../test/support/process.js'
import { percentile, smtpLoad, idleConnections, benchMessage } from './smtp-load.js'
import { filterBench } from './mail-filter.js'
import { smtpServerAlone, type AloneRun } from './smtp-alone.js'
import { CLOCK_TICK_MS, busyMeter, procStat } from './machine.js'
import { loadConfig } from '@facteur/config'

const quick = process.argv.includes('--quick')
const noFilter = process.argv.includes('--no-filter')
const filtersOnly = process.argv.includes('--filters-only')
// --only=<text> (repeatable): the rows whose label holds one of them, e.g. --only='one per message | 50 | 2 KB | 1 |'.
const only = process.argv.filter((a) => a.startsWith('--only=')).map((a) => a.slice('--only='.length))
// --format=maildir or --format=mbox: that table only (a whole run has both, Maildir first).
const formatArg = process.argv.find((a) => a.startsWith('--format='))?.slice('--format='.length)
if (formatArg !== undefined && formatArg !== 'maildir' && formatArg !== 'mbox') {
  console.error(`--format=${formatArg}: expected maildir or mbox`)
  process.exit(2)
}
const FORMATS: MailboxFormat[] = formatArg ? [formatArg] : ['maildir', 'mbox']
const DOMAIN = 'ours.example'
// smtp-source -r N sends to bench@, 2bench@ ... Nbench@: those accounts exist on both sides.
const USERS = ['bench', ...Array.from({ length: 9 }, (_, i) => `${i + 2}bench`)]
const SENDER = 'load@client.example'
/** A guard only, per table: the rows are sized to end well before it (a table near 7 minutes); a
 * row it cuts is reported as not run. */
const TABLE_BUDGET_MS = quick ? 5 * 60_000 : 11 * 60_000
/** Runs of each side per row, alternated: Postfix, Facteur, Postfix, Facteur. */
const ROUNDS = quick ? 1 : 2
/** How long a row waits for the mailboxes to hold everything it sent (then reports "not drained"). */
const DRAIN_TIMEOUT_MS = quick ? 60_000 : 120_000

type Row = { reuse: boolean; sessions: number; size: number; rcpts: number }
type Side = {
  accepted: number
  delivered: number
  drained: boolean
  p50: number
  p99: number
  /** End of DATA to 250, ms, every message of the latency run(s). */
  latencies: number[]
  /** MAIL FROM to the 250 after DATA, ms, every message of the latency run(s). */
  transactions: number[]
  rssMB?: number
  /** CPU time (user + system) of the server's processes per message sent, ms. */
  cpuMs: number
  /** How busy the machine's CPUs were (all of them, every process) during smtp-source's run, 0-1. */
  machineBusy: number
  error?: string
}
type Server = {
  name: string
  port: number
  delivered(): Promise<number>
  /** The process whose tree is the server (Postfix's master, our supervisor). */
  rootPid(): Promise<number>
  beforeRun?(): Promise<void>
  rssMB?(): Promise<number>
}

/**
 * CPU time (user + system, ms) used so far by a process and its children: the living ones (from
 * /proc) and those it has reaped (its cutime/cstime). Postfix's master forks every daemon itself;
 * our supervisor forks the services.
 */
async function treeCpuMs(root: number): Promise<number> {
  let ticks = 0
  for (const name of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const f = await procStat(name)
    if (!f) continue
    const pid = Number(name)
    if (pid === root) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])
    else if (Number(f[1]) === root) ticks += Number(f[11]) + Number(f[12])
  }
  return ticks * CLOCK_TICK_MS
}

/** Messages per smtp-source run: enough to keep every session busy, bounded in bytes written
 * (sized so that the 16 rows, the memory check and the filters-on table take about 10 minutes here; 10 recipients are 10 copies). */
function messagesFor(r: Row): number {
  const base = quick ? 100 : r.size > 10_000 || r.rcpts > 1 ? 150 : 300
  return Math.max(r.sessions, base)
}
/**
 * The fewest messages of a latency run: a side's two runs give 1,000 latencies, so that its p99
 * is the tenth longest (100 a run, until November 2026, gave 200: the p99 was the second longest,
 * which one slow reply moves).
 */
const LATENCY_MESSAGES = quick ? 100 : 500

/** Messages for the latency run (our client): every session sends at least one. */
function latencyMessagesFor(r: Row): number {
  return Math.max(r.sessions, LATENCY_MESSAGES)
}

async function waitDelivered(server: Server, target: number, since: number): Promise<{ count: number; at: number; drained: boolean }> {
  const deadline = since + DRAIN_TIMEOUT_MS
  for (;;) {
    const count = await server.delivered()
    if (count >= target) return { count, at: performance.now(), drained: true }
    if (performance.now() > deadline) return { count, at: performance.now(), drained: false }
    await sleep(50)
  }
}

/** Messages per run of smtp-server alone (it takes 1,000 to 4,000 a second here). */
const ALONE_MESSAGES = quick ? 500 : 2000

/** Messages each server takes before the table, not measured (quick: fewer). */
const WARM_UP = quick ? 300 : 1000

/**
 * A run that is not measured: V8 compiles our hot paths during the first few hundred messages,
 * and Postfix's master forks the smtpd and delivery processes it then reuses. The first row would
 * otherwise count that start-up against whichever server it hurts more.
 */
async function warmUp(server: Server): Promise<void> {
  const before = await server.delivered()
  const t0 = performance.now()
  const args = ['-s', '50', '-m', String(WARM_UP), '-l', '2048', '-f', SENDER, '-M', 'client.example', '-t', `bench@${DOMAIN}`]
  await run('/usr/sbin/smtp-source', [...args, '-C', '5', `127.0.0.1:${server.port}`], { timeoutMs: 300_000 })
  await waitDelivered(server, before + WARM_UP, t0)
}

async function measure(server: Server, r: Row): Promise<Side> {
  const rcpts = USERS.slice(0, r.rcpts).map((u) => `${u}@${DOMAIN}`)
  const m = messagesFor(r)
  await server.beforeRun?.()
  const root = await server.rootPid()
  const cpu0 = await treeCpuMs(root)
  const before = await server.delivered()
  const busy = await busyMeter()
  const t0 = performance.now()
  const args = [
    '-s',
    String(r.sessions),
    '-m',
    String(m),
    '-l',
    String(r.size),
    '-r',
    String(r.rcpts),
    '-f',
    SENDER,
    '-M',
    'client.example',
    '-t',
    `bench@${DOMAIN}`,
  ]
  if (r.reuse) args.push('-d')
  // -C: retry a connection reset (a full listen queue) rather than giving up at once.
  args.push('-C', '5', `127.0.0.1:${server.port}`)
  const source = await run('/usr/sbin/smtp-source', args, { timeoutMs: 300_000 })
  const t1 = performance.now()
  const machineBusy = await busy()
  const error =
    source.code !== 0
      ? `smtp-source exited ${source.code ?? source.signal}: ${(source.stderr || source.stdout).trim().split('\n').slice(-2).join(' ')}`
      : undefined
  const done = await waitDelivered(server, before + m * r.rcpts, t0)
  const delivered = (done.count - before) / r.rcpts
  // Latency: our client, same sessions, mode, size and recipients; then let it drain too.
  const lat = await smtpLoad({
    port: server.port,
    sessions: r.sessions,
    messages: latencyMessagesFor(r),
    reuse: r.reuse,
    size: r.size,
    recipients: rcpts,
    sender: SENDER,
    // A reply that takes this long is counted as a failure (Postfix's 100 smtpd leave the other
    // 400 of 500 sessions in its listen queue); a longer wait would only eat the time budget.
    timeoutMs: 30_000,
  })
  await waitDelivered(server, done.count + lat.sent * r.rcpts, performance.now())
  const cpuMs = ((await treeCpuMs(root)) - cpu0) / (m + lat.sent)
  return {
    cpuMs,
    machineBusy,
    accepted: error ? NaN : m / ((t1 - t0) / 1000),
    delivered: delivered / ((done.at - t0) / 1000),
    drained: done.drained,
    p50: percentile(lat.latencies, 50),
    p99: percentile(lat.latencies, 99),
    latencies: lat.latencies,
    transactions: lat.transactions,
    rssMB: await server.rssMB?.(),
    error: error ?? (lat.failed ? `load client: ${lat.failed} failed (${lat.errors[0]})` : undefined),
  }
}

const mean = (xs: number[]): number => xs.reduce((sum, x) => sum + x, 0) / xs.length
/** Of rates over runs of as many messages each: the rate over all their messages. */
const harmonicMean = (xs: number[]): number => xs.length / xs.reduce((sum, x) => sum + 1 / x, 0)

/**
 * A side's runs of one row together: its rates over all its messages (each run sends as many,
 * so the harmonic mean), its percentiles over every latency, its mean CPU, its highest RSS.
 */
function together(runs: Side[]): Side {
  const latencies = runs.flatMap((s) => s.latencies)
  const rss = runs.map((s) => s.rssMB).filter((x): x is number => x !== undefined)
  return {
    accepted: harmonicMean(runs.map((s) => s.accepted)),
    delivered: harmonicMean(runs.map((s) => s.delivered)),
    drained: runs.every((s) => s.drained),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    latencies,
    transactions: runs.flatMap((s) => s.transactions),
    ...(rss.length ? { rssMB: Math.max(...rss) } : {}),
    cpuMs: mean(runs.map((s) => s.cpuMs)),
    machineBusy: mean(runs.map((s) => s.machineBusy)),
    error: runs.find((s) => s.error)?.error,
  }
}

/** Pids of the appliance's services, from the supervisor's /health. */
async function servicePids(a: Appliance): Promise<number[]> {
  const { body } = await applianceHealth(a)
  return Object.values(body.services)
    .map((s) => s.pid)
    .filter((p): p is number => typeof p === 'number' && p > 0)
}

async function statusKB(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const text = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)
  return m ? Number(m[1]) : 0
}

const rowLabel = (r: Row): string =>
  `| ${r.reuse ? 'reused (-d)' : 'one per message'} | ${r.sessions} | ${r.size >= 1024 ? `${r.size / 1024} KB` : r.size} | ${r.rcpts}`

const pct = (x: number): string => `${fmt(100 * x)} %`
const range = (xs: number[]): string => `${fmt(Math.min(...xs), 2)}-${fmt(Math.max(...xs), 2)}`
const pctRange = (xs: number[]): string => `${pct(Math.min(...xs))}-${pct(Math.max(...xs))}`
const fmt = (n: number | undefined, digits = 0): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits))

const postfixVersion = async (): Promise<string> => (await run('postconf', ['-d', '-h', 'mail_version'])).stdout.trim()

/** The file system under the run. An ext4 without a journal (this machine's) makes each new
 * inode skip those freed in the last seconds (the kernel's recently_deleted(), ext4/ialloc.c): a
 * scan that grows with the files the servers delete, and a cost that swings (bench/README.md). */
async function disk(): Promise<string> {
  const mount = (await run('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '-T', os.tmpdir()])).stdout.trim()
  const [type, source = ''] = mount.split(/\s+/)
  if (type !== 'ext4') return mount
  const device = path.basename(source)
  const journals = await fs.readdir('/proc/fs/jbd2').catch(() => [] as string[])
  return journals.some((j) => j.startsWith(`${device}-`))
    ? `${mount}, with a journal`
    : `${mount}, without a journal: inode allocation skips recently deleted inodes, see bench/README.md`
}

async function machine(): Promise<string> {
  const cpu = os.cpus()[0]?.model ?? 'unknown'
  return [
    `- CPU: ${os.cpus().length} × ${cpu} (nproc ${(await run('nproc', [])).stdout.trim()})`,
    `- memory: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; load average at the start ${startLoad.map((l) => l.toFixed(1)).join(' ')} (other jobs share the machine: ratios within a row are the result)`,
    `- kernel: ${os.release()}; Node ${process.version}; Postfix ${await postfixVersion()}`,
    `- disk: the spool, Postfix's queue and both mail directories in ${os.tmpdir()} (${await disk()})`,
  ].join('\n')
}

const lines: string[] = []
const say = (s = ''): void => {
  console.log(s)
  lines.push(s)
}

const started = new Date()
const startLoad = os.loadavg()
/**
 * The filters-off table in one mailbox format: Postfix and the appliance both deliver in it.
 * `first`: the memory of idle connections and the ceiling are measured with it too. Returns the
 * exit code (1: Postfix delivered nothing).
 */
async function postfixTable(format: MailboxFormat, first: boolean): Promise<number> {
  const tableStarted = Date.now()
  let postfix: LocalPostfix | undefined
  let mx: Appliance | undefined
  try {
    try {
      postfix = await startLocalPostfix({ domain: DOMAIN, users: USERS, format })
    } catch (err) {
      console.error(`Postfix did not start: ${(err as Error).message}`)
      process.exit(1)
    }
    mx = await startAppliance({
      users: Object.fromEntries(USERS.map((u) => [`${u}@${DOMAIN}`, 'bench-password'])),
      env: {
        MAILBOX_FORMAT: format,
        // 500 parallel sessions, and 1,000 idle connections below: over the default of 200, and all
        // from 127.0.0.1 (no limit per address; Postfix's smtpd_client_connection_count_limit is 0 too).
        SMTP_MAX_CLIENTS: '2000',
        SMTP_MAX_CLIENTS_PER_IP: '0',
        ...(process.env.BENCH_ENV ? (JSON.parse(process.env.BENCH_ENV) as Record<string, string>) : {}),
      },
    })
    const a = mx
    const pf = postfix
    const ours: Server = {
      name: 'Facteur',
      port: a.port('smtp-ingress', 'smtp'),
      delivered: format === 'maildir' ? () => countMaildirs(a.mailDir, USERS) : mboxCounter(a.mailDir, USERS),
      rootPid: async () => a.supervisor.pid!,
      async beforeRun() {
        // Linux: writing 5 to clear_refs resets VmHWM, so each row reports its own peak.
        for (const pid of await servicePids(a)) await fs.writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => undefined)
      },
      async rssMB() {
        let kb = 0
        for (const pid of await servicePids(a)) kb += await statusKB(pid, 'VmHWM')
        return kb / 1024
      },
    }
    const theirs: Server = {
      name: 'Postfix',
      port: pf.port,
      delivered: () => pf.delivered(),
      rootPid: async () => Number((await fs.readFile(path.join(pf.configDir, 'queue', 'pid', 'master.pid'), 'utf8')).trim()),
    }

    const memoryLines: string[] = []
    // Memory: 1,000 idle connections on :25, measured first, on a fresh ingress: after the load rows
    // its heap shrinks and grows by more than the connections take (a row's garbage collected or not).
    const ingressPid = (await applianceHealth(a)).body.services['smtp-ingress']?.pid
    if (first && ingressPid) {
      const before = await statusKB(ingressPid, 'VmRSS')
      const idle = await idleConnections(ours.port, 1000)
      await sleep(1000)
      const with1000 = await statusKB(ingressPid, 'VmRSS')
      idle.close()
      memoryLines.push(
        '',
        '## Memory: 1,000 idle connections on :25',
        '',
        `smtp-ingress RSS ${fmt(before / 1024, 1)} MB before, ${fmt(with1000 / 1024, 1)} MB with ${idle.open} connections open (greeted, idle): ${fmt((with1000 - before) / Math.max(1, idle.open), 1)} kB each.`,
      )
    }
    const rows: Row[] = []
    // The 50-session rows first: when the time budget runs out, both modes have been measured.
    for (const sessions of [50, 500])
      for (const reuse of [false, true])
        for (const size of [2048, 102_400]) for (const rcpts of [1, 10]) rows.push({ reuse, sessions, size, rcpts })

    if (rows.some((r) => !only.length || only.some((o) => `${rowLabel(r)} |`.includes(o)))) for (const s of [theirs, ours]) await warmUp(s)

    say(`## Filters off, ${format === 'maildir' ? 'Maildir' : 'mbox'}: Facteur against Postfix`)
    say()
    say(
      `${format === 'maildir' ? "Both deliver into Maildirs (file fsync'd, then renamed into new/). For several recipients Postfix's virtual(8) writes a file for each; we write one, fsync it, hard-link it into each new/ and fsync it again (its link count), as Dovecot's LMTP does (without Delivered-To, which would name every recipient to each)." : "Both append to mbox files (mboxrd quoting; the file fsync'd after the append, under a lock: Postfix's fcntl lock and dotlock, our journaled dotlock)."} Each row runs Postfix, then Facteur, ${ROUNDS === 1 ? 'once' : `${ROUNDS} times over (A B A B)`}; a side's figures are its runs together (rates over all its messages, percentiles over all its latencies). accepted: smtp-source's messages / its run time. delivered: messages found in the mailboxes / time until the last one is there. p50/p99: end of DATA to 250, by bench/smtp-load.ts, in a run of its own after smtp-source's (same sessions, mode, size and recipients; at least ${LATENCY_MESSAGES} messages a run); MAIL to 250: from MAIL FROM sent to that 250, the whole transaction, in the same run (a wait for a place under SMTP_MAX_TRANSACTIONS is in it). RSS: peak (VmHWM) of our services together, for the row. ratio: our delivered msg/s / Postfix's. CPU: user + system time of all the server's processes (Postfix's master and its daemons; our supervisor and services) per message, receiving and delivering: the figure the machine's other jobs disturb least. Before the first row each server took ${WARM_UP} messages of 2 KB from 50 sessions, not measured (V8 compiles our hot paths in the first few hundred; Postfix forks the daemons it then reuses).`,
    )
    say()
    say(
      `Postfix ${await postfixVersion()}, its own config directory (listed in alternate_config_directories of /etc/postfix/main.cf while it runs), tuned as an administrator would for this load (test/support/postfix-local.ts): ${Object.entries(
        BENCHMARK_TUNING,
      )
        .map(([k, v]) => `${k} = ${v}`)
        .join(', ')}${
        format === 'mbox'
          ? `, and for mbox ${Object.entries(MBOX_TUNING)
              .map(([k, v]) => `${k} = ${v}`)
              .join(
                ', ',
              )} (one delivery at a time into each mailbox: with 50 at once into one file, each that finds the lock taken sleeps about a second, deliver_lock_delay; and no limit on a mailbox's size, 51,200,000 bytes by default, which the benchmark's mail passes)`
          : ''
      }. With the defaults it reached 100-140 msg/s here and lost sessions at 500: 100 smtpd processes at most (default_process_limit), so 400 of 500 sessions waited in the listen queue until their greeting timed out, and in_flow_delay (1 s) paused its smtpd whenever mail came in faster than the queue manager took it. ${
        format === 'maildir'
          ? 'Durability is not the same: Postfix fsyncs each queue file before the 250 and each Maildir file before its rename, and no directory (strace: about 2 fsyncs a message); we also fsync queue/ before the 250, new/ before the spool lets go and active/ after it (5 a message: 2 files, 3 directories whose fsyncs are grouped across messages; with 10 recipients 6 and 12: the Maildir file twice, each new/).'
          : "Durability: Postfix fsyncs each queue file before the 250 and the mbox after each append, and no directory; we fsync the spool as in the Maildir table, and each mailbox once per group of appends that reached it together, its lock's directory twice (packages/mailbox/src/mbox.ts)."
      }`,
    )
    say()
    say(
      '| connection | sessions | size | rcpts | Postfix accepted/s | Facteur accepted/s | Postfix delivered/s | Facteur delivered/s | **ratio** | Postfix p50 / p99 ms | Facteur p50 / p99 ms | MAIL to 250, p99 ms, Postfix / Facteur | CPU ms/msg Postfix / Facteur | Facteur peak RSS MB |',
    )
    say('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    let postfixTotal = 0
    const notes: string[] = []
    const measured: { r: Row; p: Side; f: Side }[] = []
    for (const r of rows) {
      const label = rowLabel(r)
      if (only.length && !only.some((o) => `${label} |`.includes(o))) continue
      if (Date.now() - tableStarted > TABLE_BUDGET_MS) {
        notes.push(
          `${label.slice(2).replace(/ \| /g, ', ')} — not run: the table's time budget (${TABLE_BUDGET_MS / 60_000} min) was spent`,
        )
        continue
      }
      // A B A B: each side's runs interleaved with the other's, so that a slow spell of the machine
      // falls on both.
      const runs: { p: Side[]; f: Side[] } = { p: [], f: [] }
      for (let round = 0; round < ROUNDS; round++) {
        runs.p.push(await measure(theirs, r))
        runs.f.push(await measure(ours, r))
      }
      const p = together(runs.p)
      const f = together(runs.f)
      postfixTotal += p.delivered
      measured.push({ r, p, f })
      const drained = (s: Side): string => (s.drained ? '' : ' (not drained)')
      say(
        `${label} | ${fmt(p.accepted)} | ${fmt(f.accepted)} | ${fmt(p.delivered)}${drained(p)} | ${fmt(f.delivered)}${drained(f)} | **${fmt(f.delivered / p.delivered, 2)}** | ${fmt(p.p50, 1)} / ${fmt(p.p99, 1)} | ${fmt(f.p50, 1)} / ${fmt(f.p99, 1)} | ${fmt(percentile(p.transactions, 99), 1)} / ${fmt(percentile(f.transactions, 99), 1)} | ${fmt(p.cpuMs, 1)} / ${fmt(f.cpuMs, 1)} | ${fmt(f.rssMB)} |`,
      )
      for (const [n, s] of [
        ['Postfix', p],
        ['Facteur', f],
      ] as const)
        if (s.error) notes.push(`${label.slice(2).replace(/ \| /g, ', ')} — ${n}: ${s.error}`)
    }
    if (notes.length) {
      say()
      for (const n of notes) say(`- ${n}`)
    }
    if (measured.length) {
      const p99ok = measured.filter(({ p, f }) => f.p99 <= p.p99).length
      const wholeOk = measured.filter(({ p, f }) => percentile(f.transactions, 99) <= percentile(p.transactions, 99)).length
      say()
      say(
        `Against the targets, in ${measured.length} rows: delivered msg/s ${range(measured.map(({ p, f }) => f.delivered / p.delivered))}x Postfix's (target: at least 2x in every row); p99 time to 250 no worse than Postfix's in ${p99ok} (target: all), the whole transaction's (MAIL to 250, where a wait under SMTP_MAX_TRANSACTIONS goes) in ${wholeOk}; our CPU per message ${range(measured.map(({ p, f }) => f.cpuMs / p.cpuMs))}x Postfix's. The machine's CPUs (all processes: the server, smtp-source, the kernel, other jobs) were ${pctRange(measured.map(({ p }) => p.machineBusy))} busy during Postfix's smtp-source runs, ${pctRange(measured.map(({ f }) => f.machineBusy))} during ours: a run the CPUs bound delivers at their speed over its CPU per message.`,
      )
    }
    const ceilingRows = first ? measured.filter(({ r }) => r.size === 2048 && r.rcpts === 1) : []
    if (ceilingRows.length) {
      // The appliance runs with SMTP_GREETING_DELAY's default: smtp-server alone pauses as long.
      const greetingDelayMs = loadConfig({ MAIL_DOMAIN: DOMAIN }).smtp.greetingDelayMs
      say()
      say('### The ceiling: smtp-server alone')
      say()
      say(
        `The library our listeners are built on, in the benchmark's own process, with our ${greetingDelayMs} ms pause before the 220 and nothing else: no policy, no spool, no fsync, no delivery (bench/smtp-alone.ts). smtp-source drives it as it drove the rows above, ${ALONE_MESSAGES} messages a run, ${ROUNDS === 1 ? 'once' : `${ROUNDS} runs`}. Its accepted rate bounds what any server built on it can deliver; its CPU is that process's.`,
      )
      say()
      say(
        '| connection | sessions | size | rcpts | Postfix delivered/s | smtp-server alone accepted/s | **alone / Postfix** | CPU ms/msg smtp-server alone / Facteur / Postfix | machine busy, smtp-server alone / Facteur / Postfix |',
      )
      say('|---|---|---|---|---|---|---|---|---|')
      const ratios: number[] = []
      for (const { r, p, f } of ceilingRows) {
        const alone: AloneRun[] = []
        for (let round = 0; round < ROUNDS; round++)
          alone.push(
            await smtpServerAlone({ greetingDelayMs, sessions: r.sessions, messages: ALONE_MESSAGES, size: r.size, reuse: r.reuse }),
          )
        const failed = alone.find((a) => a.error)
        const accepted = harmonicMean(alone.map((a) => a.accepted))
        const cpuMs = mean(alone.map((a) => a.cpuMs))
        const busy = mean(alone.map((a) => a.machineBusy))
        if (!failed) ratios.push(accepted / p.delivered)
        say(
          `${rowLabel(r)} | ${fmt(p.delivered)} | ${failed ? `- (${failed.error})` : fmt(accepted)} | **${failed ? '-' : fmt(accepted / p.delivered, 2)}** | ${fmt(cpuMs, 2)} / ${fmt(f.cpuMs, 1)} / ${fmt(p.cpuMs, 1)} | ${pct(busy)} / ${pct(f.machineBusy)} / ${pct(p.machineBusy)} |`,
        )
      }
      if (ratios.length) {
        say()
        say(
          `smtp-server alone, storing nothing, took mail at ${range(ratios)}x Postfix's delivered rate; the target asks 2x of the whole appliance, which also commits each message to the spool and delivers it.`,
        )
      }
    }
    for (const l of memoryLines) say(l)
    if (!(postfixTotal > 0)) {
      console.error(`Postfix delivered nothing: see ${pf.logFile}`)
      return 1
    }
    return 0
  } finally {
    await mx?.stop()
    await postfix?.close()
  }
}

let exitCode = 0
if (!filtersOnly)
  for (const [i, format] of FORMATS.entries()) {
    if (i > 0) say()
    exitCode = await postfixTable(format, i === 0)
    if (exitCode !== 0) break
  }

if (!noFilter && exitCode === 0) {
  say()
  try {
    for (const l of await filterBench({ quick, message: benchMessage, users: USERS, domain: DOMAIN })) say(l)
  } catch (err) {
    say(`Filters on: not measured (${(err as Error).message.split('\n')[0]})`)
    exitCode = 1
  }
}

const command = `npm run bench${process.argv.slice(2).length ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
const doc = [
  '# Benchmarks',
  '',
  `Written by \`${command}\` (bench/mail.ts) on ${started.toISOString()}, in ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s.`,
  '',
  await machine(),
  '',
  ...lines,
  '',
].join('\n')
// A partial run prints its rows; the file keeps the last whole run's tables.
if (only.length || formatArg || noFilter || filtersOnly)
  console.log('\nBENCHMARKS.md not written: a partial run (--only, --format, --no-filter or --filters-only)')
else {
  await fs.writeFile(path.join(ROOT, 'BENCHMARKS.md'), doc)
  console.log(`\nwrote ${path.join(ROOT, 'BENCHMARKS.md')}`)
}
process.exit(exitCode)
