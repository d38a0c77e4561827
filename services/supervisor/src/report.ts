// REPORT_INTERVAL: a summary of the mail the appliance handled, mailed to REPORT_RECIPIENT (the
// postmaster) every day, week or interval, as docker-mailserver's pflogsumm report does: messages
// received by service, refused in the dialogue by reply (the five most frequent), the content
// filter's verdicts, deliveries, deferred attempts, bounces, AUTH failures, and the queue now. It is
// made from the counters the supervisor adds up from every service's /metrics (so it lags them by
// at most SUPERVISOR_POLL_INTERVAL), minus those at the last report, kept in SPOOL_DIR/report.json
// (a restarted supervisor counts from its start). It is queued like a bounce: from the null sender,
// Auto-Submitted, never notifying anyone of its own fate.
import fs from 'node:fs/promises'
import path from 'node:path'
import MailComposer from 'nodemailer/lib/mail-composer/index.js'
import type { Registry } from 'prom-client'
import type { Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import type { Spool } from '@facteur/spool'

type Counts = Record<string, number>
type State = { lastAt: number; counts: Counts }

/** Every counter's value, keyed by name and labels (`facteur_deliveries_total{"outcome":"delivered"}`). */
async function snapshot(registry: Registry): Promise<Counts> {
  const counts: Counts = {}
  for (const m of await registry.getMetricsAsJSON())
    // prom-client's types say an enum; the JSON holds the name.
    if (String(m.type) === 'counter') for (const v of m.values) counts[`${m.name}${JSON.stringify(v.labels)}`] = v.value
  return counts
}

/** What the counters gained since `before`; a counter that went back (a restarted supervisor) counts from 0. */
function since(now: Counts, before: Counts): Counts {
  const out: Counts = {}
  for (const [k, v] of Object.entries(now)) out[k] = v >= (before[k] ?? 0) ? v - (before[k] ?? 0) : v
  return out
}

/** The counters of one metric, each with its labels. */
function series(counts: Counts, name: string): { labels: Record<string, string>; value: number }[] {
  return Object.entries(counts)
    .filter(([k, v]) => k.startsWith(`${name}{`) && v > 0)
    .map(([k, value]) => ({ labels: JSON.parse(k.slice(name.length)) as Record<string, string>, value }))
}

const total = (rows: { value: number }[]): number => rows.reduce((n, r) => n + r.value, 0)

/** `a 3, b 1` from labelled rows, largest first, at most `max`. */
function breakdown(
  rows: { labels: Record<string, string>; value: number }[],
  label: (l: Record<string, string>) => string,
  max = 5,
): string {
  const merged = new Map<string, number>()
  for (const r of rows) merged.set(label(r.labels), (merged.get(label(r.labels)) ?? 0) + r.value)
  const sorted = [...merged].sort((a, b) => b[1] - a[1])
  const shown = sorted.slice(0, max).map(([k, n]) => `${k} ${n}`)
  return shown.join(', ') + (sorted.length > max ? `, ${sorted.length - max} more` : '')
}

/** The report's subject and text for the counts of one period. */
export function composeReport(
  c: Counts,
  opts: { hostname: string; from: Date; to: Date; queue: number | null },
): { subject: string; text: string } {
  const received = series(c, 'facteur_messages_received_total')
  const refused = series(c, 'facteur_messages_rejected_total')
  const verdicts = series(c, 'facteur_filter_verdicts_total')
  const deliveries = series(c, 'facteur_deliveries_total')
  const outcome = (o: string): number => total(deliveries.filter((d) => d.labels.outcome === o))
  const auth = series(c, 'facteur_auth_failures_total')
  const rows: [string, string, string][] = [
    ['Received (queued)', String(total(received)), breakdown(received, (l) => l.service)],
    ['Refused in the dialogue', String(total(refused)), breakdown(refused, (l) => `${l.code} ${l.enhanced} (${l.cmd})`)],
    ['Content filter verdicts', String(total(verdicts)), breakdown(verdicts, (l) => `${l.action} (${l.direction})`)],
    ['Delivered', String(outcome('delivered')), ''],
    ['Deferred attempts', String(outcome('deferred')), ''],
    ['Bounced', String(outcome('bounced')), ''],
    ['AUTH failures', String(total(auth)), ''],
    ['In the queue now', opts.queue === null ? 'unknown' : String(opts.queue), ''],
  ]
  const width = Math.max(...rows.map((r) => r[0].length))
  const lines = rows.map(([k, n, more]) => `${k.padEnd(width)}  ${n.padStart(6)}${more ? `  ${more}` : ''}`)
  const text = [`Mail handled by ${opts.hostname}`, `from ${opts.from.toISOString()} to ${opts.to.toISOString()}:`, '', ...lines, ''].join(
    '\n',
  )
  const subject = `Facteur report for ${opts.hostname}: ${total(received)} received, ${outcome('delivered')} delivered, ${outcome('bounced')} bounced, ${total(refused)} refused`
  return { subject, text }
}

export function startReports(deps: {
  config: Config
  logger: Logger
  spool: Spool | null
  registry: Registry
  queueDepth: () => Promise<number | null>
}): { stop(): void } {
  const { config, logger, spool, registry } = deps
  const every = config.supervisor.reportIntervalMs
  if (every === null) return { stop: () => undefined }
  if (!spool) {
    logger.warn('REPORT_INTERVAL is set but the spool cannot be opened: no reports')
    return { stop: () => undefined }
  }
  const file = path.join(config.spoolDir, 'report.json')
  const save = async (state: State): Promise<void> => {
    await fs.writeFile(`${file}.tmp`, JSON.stringify(state))
    await fs.rename(`${file}.tmp`, file)
  }
  let state: State | null = null
  let busy = false

  const tick = async (): Promise<void> => {
    if (busy) return
    busy = true
    try {
      const counts = await snapshot(registry)
      if (!state) {
        const kept = await fs.readFile(file, 'utf8').then(
          (t) => JSON.parse(t) as State,
          () => null,
        )
        state = kept ?? { lastAt: Date.now(), counts }
        if (!kept) await save(state)
      }
      const now = Date.now()
      if (now - state.lastAt < every) return
      const { subject, text } = composeReport(since(counts, state.counts), {
        hostname: config.hostname,
        from: new Date(state.lastAt),
        to: new Date(now),
        queue: await deps.queueDepth(),
      })
      const message = await new MailComposer({
        from: { name: 'Facteur', address: `MAILER-DAEMON@${config.hostname}` },
        to: config.supervisor.reportRecipient,
        subject,
        text,
        headers: { 'Auto-Submitted': 'auto-generated' },
      })
        .compile()
        .build()
      const to = config.supervisor.reportRecipient
      const queued = await spool.enqueue(message, {
        sender: '',
        recipients: [{ address: to, original: to, status: 'pending', attempts: 0, notify: ['NEVER'] }],
        receivedAt: now,
        nextAttempt: 0,
        client: { ip: '127.0.0.1', helo: config.hostname, tls: false },
        source: 'report',
      })
      state = { lastAt: now, counts }
      await save(state)
      logger.info('report queued', { queueId: queued.id, to, subject })
    } catch (err) {
      logger.warn('report not queued', { err: (err as Error).message })
    } finally {
      busy = false
    }
  }
  void tick()
  const timer = setInterval(() => void tick(), Math.min(every, 60_000))
  timer.unref()
  return { stop: () => clearInterval(timer) }
}
