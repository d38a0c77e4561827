// The filters-on half of the mail benchmark: the appliance with its content filter (real clamd
// + spamd) taking mail over SMTP, against the same clamd + spamd calls made directly with the
// same messages at the same concurrency (as bench/filter.ts does for the filter alone).
// Alternated A B A B, five rounds; the target is no more than 10 % below the engines called
// directly, judged on the rounds together (one round of a few seconds swings by 10 % either way).
import { performance } from 'node:perf_hooks'
import { startAppliance } from '../test/support/appliance.js'
import { startClamd } from '../test/support/clamd.js'
import { startSpamd } from '../test/support/spamd.js'
import { startDns } from '../test/support/dnsmasq.js'
import { countMaildirs } from '../test/support/postfix-local.js'
import { clamavScanner } from '../services/filter/src/virus.js'
import { spamassassinClient } from '../services/filter/src/spam/spamassassin.js'
import { percentile, smtpLoad } from './smtp-load.js'

export async function filterBench(opts: {
  quick: boolean
  message: (size: number, to: string, n: number, from?: string) => Buffer
  users: string[]
  domain: string
}): Promise<string[]> {
  const out: string[] = []
  const dns = await startDns()
  const clamd = await startClamd()
  const spamd = await startSpamd()
  const to = `${opts.users[0]}@${opts.domain}`
  const mx = await startAppliance({
    users: Object.fromEntries(opts.users.map((u) => [`${u}@${opts.domain}`, 'bench-password'])),
    services: ['filter', 'smtp-ingress', 'delivery'],
    env: {
      MAILBOX_FORMAT: 'maildir',
      SMTP_MAX_CLIENTS: '2000',
      SMTP_MAX_CLIENTS_PER_IP: '0',
      CLAMAV_PORT: String(clamd.port),
      SPAMD_PORT: String(spamd.port),
      DNS_SERVERS: dns.server,
      FILTER_SCAN_TIMEOUT: '60s',
    },
    timeoutMs: 60_000,
  })
  try {
    const port = mx.port('smtp-ingress', 'smtp')
    const virus = clamavScanner({ host: '127.0.0.1', port: clamd.port, timeoutMs: 60_000 })
    const spam = spamassassinClient({ host: '127.0.0.1', port: spamd.port, timeoutMs: 60_000 })
    const envelope = {
      direction: 'inbound' as const,
      ip: '127.0.0.1',
      helo: 'client.example',
      sender: 'load@client.example',
      recipients: [to],
    }
    // spamd (4 children) scans a few messages a second here: small runs, low concurrency.
    const total = opts.quick ? 30 : 80
    // Rounds of a few seconds swing by 10 % either way: five, judged together.
    const rounds = opts.quick ? 2 : 5
    const summary: string[] = []
    out.push('## Filters on (clamd + spamd): Facteur against the engines called directly')
    out.push('')
    out.push(
      `${total} messages per run, 2 KB, 1 recipient, connection reused; the direct runs send the same messages to clamd (INSTREAM) and spamd (SYMBOLS) in parallel, with the same client code as the filter. ${rounds} rounds, alternated; the target is judged on the rounds together (messages over seconds, each side), a single run of a few seconds swinging by about 10 % either way on this machine.`,
    )
    out.push('')
    out.push('| sessions | round | direct msg/s | Facteur msg/s (250 received) | Facteur p50 / p99 ms | Facteur vs direct |')
    out.push('|---|---|---|---|---|---|')
    // Warm-up: spamd's children compile their rules on first use.
    await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        Promise.all([virus.scan(opts.message(2048, to, i)), spam.scan(opts.message(2048, to, i), envelope)]),
      ),
    )
    for (const sessions of [4, 8]) {
      let directSeconds = 0
      let oursSeconds = 0
      let oursSent = 0
      for (let round = 1; round <= rounds; round++) {
        const messages = Array.from({ length: total }, (_, i) => opts.message(2048, to, i))
        let next = 0
        const t0 = performance.now()
        await Promise.all(
          Array.from({ length: sessions }, async () => {
            while (next < messages.length) {
              const m = messages[next++]
              await Promise.all([virus.scan(m), spam.scan(m, envelope)])
            }
          }),
        )
        const seconds = (performance.now() - t0) / 1000
        directSeconds += seconds
        const direct = total / seconds
        const before = await countMaildirs(mx.mailDir, opts.users)
        const load = await smtpLoad({ port, sessions, messages: total, reuse: true, size: 2048, recipients: [to] })
        const ours = load.sent / load.seconds
        oursSeconds += load.seconds
        oursSent += load.sent
        const failed = load.failed ? ` (${load.failed} failed: ${load.errors[0]})` : ''
        out.push(
          `| ${sessions} | ${round} | ${direct.toFixed(1)} | ${ours.toFixed(1)}${failed} | ${percentile(load.latencies, 50).toFixed(0)} / ${percentile(load.latencies, 99).toFixed(0)} | ${(((ours - direct) / direct) * 100).toFixed(1)} % |`,
        )
        console.log(out[out.length - 1])
        // Let delivery catch up so that it does not run under the next direct round (bounded).
        for (let i = 0; i < 600 && (await countMaildirs(mx.mailDir, opts.users)) < before + load.sent; i++)
          await new Promise((r) => setTimeout(r, 100))
      }
      const direct = (total * rounds) / directSeconds
      const ours = oursSent / oursSeconds
      const delta = ((ours - direct) / direct) * 100
      summary.push(
        `- ${sessions} sessions, ${rounds} rounds together: direct ${direct.toFixed(1)} msg/s, Facteur ${ours.toFixed(1)} msg/s: ${delta.toFixed(1)} % (target: no more than 10 % below: ${delta >= -10 ? 'met' : 'not met'})`,
      )
    }
    out.push('', ...summary)
  } finally {
    await mx.stop()
    await spamd.close()
    await clamd.close()
    await dns.close()
  }
  return out
}
