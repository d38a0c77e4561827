// Benchmark (not a test): the filter's messages/s over HTTP against the same clamd + spamd
// scanning called directly, at the same concurrency. The filter's overhead (HTTP, the envelope,
// mailauth on a local DNS server, the policy) should stay under 10 %.
//   node --import tsx --conditions=source bench/filter.ts [messages=400] [concurrency=8]
import { startClamd } from '../test/support/clamd.js'
import { startSpamd } from '../test/support/spamd.js'
import { startDns } from '../test/support/dnsmasq.js'
import { check, message, startTestFilter } from '../services/filter/test/harness.js'
import { clamavScanner } from '../services/filter/src/virus.js'
import { spamassassinClient } from '../services/filter/src/spam/spamassassin.js'

const total = Number(process.argv[2] ?? 400)
const concurrency = Number(process.argv[3] ?? 8)

const dns = await startDns()
const clamd = await startClamd()
const spamd = await startSpamd()
const filter = await startTestFilter({ CLAMAV_PORT: String(clamd.port), SPAMD_PORT: String(spamd.port), DNS_SERVERS: dns.server })
const messages = Array.from({ length: total }, (_, i) =>
  Buffer.from(
    message({
      subject: `bench ${i}`,
      body: `Hello Bob,\r\n\r\nmessage number ${i}.\r\n${'Some ordinary text for the scanners to read.\r\n'.repeat(40)}`,
    }),
  ),
)

async function run(label: string, one: (m: Buffer) => Promise<unknown>): Promise<number> {
  let next = 0
  const started = process.hrtime.bigint()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < messages.length) await one(messages[next++])
    }),
  )
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const rate = messages.length / seconds
  console.log(
    `${label.padEnd(32)} ${rate.toFixed(1).padStart(8)} messages/s (${messages.length} in ${seconds.toFixed(2)} s, concurrency ${concurrency})`,
  )
  return rate
}

try {
  const virus = clamavScanner({ host: '127.0.0.1', port: clamd.port, timeoutMs: 30_000 })
  const spam = spamassassinClient({ host: '127.0.0.1', port: spamd.port, timeoutMs: 30_000 })
  const envelope = {
    direction: 'inbound' as const,
    ip: '192.0.2.10',
    helo: 'mail.remote.example',
    sender: 'alice@remote.example',
    recipients: ['bob@ours.example'],
  }
  // Warm up both paths (spamd's children compile their rules on first use).
  for (const m of messages.slice(0, concurrency)) await Promise.all([virus.scan(m), spam.scan(m, envelope), check(filter.port, m)])
  const directly = (m: Buffer): Promise<unknown> => Promise.all([virus.scan(m), spam.scan(m, envelope)])
  const throughFilter = async (m: Buffer): Promise<void> => {
    const { verdict } = await check(filter.port, m)
    if (verdict.action === 'tempfail') throw new Error(`filter tempfailed: ${JSON.stringify(verdict.checks)}`)
  }
  // Alternated, so a drift of the machine's speed does not count as overhead.
  let direct = 0
  let through = 0
  for (let round = 1; round <= 2; round++) {
    direct += await run(`clamd + spamd, direct (${round})`, directly)
    through += await run(`through the filter (${round})`, throughFilter)
  }
  console.log(`overhead: ${((1 - through / direct) * 100).toFixed(1)} %`)
} finally {
  await filter.close()
  await spamd.close()
  await clamd.close()
  await dns.close()
}
