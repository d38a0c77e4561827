// Renders RELIABILITY.md from the figures the hostile tests appended to .results.jsonl.
// Run by `npm run test:hostile` after the tests, whatever their outcome.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { RESULTS, type Figures } from './figures.js'

const root = path.resolve(path.dirname(RESULTS), '..', '..')
const lines = fs.existsSync(RESULTS) ? fs.readFileSync(RESULTS, 'utf8').split('\n').filter(Boolean) : []
const rows = lines.map((l) => JSON.parse(l) as Figures)
const cell = (v: unknown): string => (v === undefined ? '–' : String(v).replace(/\|/g, '\\|').replace(/\n/g, ' '))
const scale = process.env.HOSTILE_SCALE === 'full' ? 'full (HOSTILE_SCALE=full)' : 'CI default (HOSTILE_SCALE=full for the issue’s loads)'

const out = [
  '# Reliability and security evidence',
  '',
  'Written by `npm run test:hostile` (test/hostile/*.test.ts, rendered by test/hostile/report.ts) from its last run;',
  'each row is one test against the real appliance (process mode, loopback only).',
  `Run: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${os.cpus().length} CPU(s), Node ${process.version}; scale: ${scale}.`,
  '',
  '"–" means the figure does not apply. Peak RSS is the highest resident set of any one service process, sampled every 250 ms from /proc.',
  '',
  '| test | load | injected | sent | accepted | delivered | lost | duplicated | restarts | peak RSS (MiB) | measured result | time (s) |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${[r.test, r.load, r.injected, r.sent, r.accepted, r.delivered, r.lost, r.duplicated, r.restarts, r.peakRssMiB, r.result, r.durationS].map(cell).join(' | ')} |`,
  ),
  '',
  '## Covered elsewhere, not repeated here',
  "- One case each of the authentication rows, with swaks, and the slowdown of an attacked account's AUTH replies:",
  '  test/submission.test.ts.',
  '- Local parts that would leave MAIL_DIR refused at RCPT (553 5.1.3): test/ingress.test.ts; kill -9 at the worst',
  '  moments of spool and mailbox writes, fsync order under strace: test/durability.test.ts.',
  '- Maildir writes through planted symlinks, climbing folder names and too long names, one case each against',
  '  deliverMaildir itself: packages/mailbox/test/maildir-safety.test.ts.',
  '',
  '## Dependencies failing: what the appliance chooses',
  '- clamd or spamd away, hung or answering garbage: FILTER_FAILURE decides (tempfail: 451 4.7.1; accept: queued with',
  '  "X-Facteur-Filter: not scanned"); every engine call is bounded by FILTER_SCAN_TIMEOUT as a whole.',
  '- DNS away or hung: inbound mail is accepted with Authentication-Results temperror, whatever FILTER_FAILURE says',
  '  (services/filter/README.md, "When an engine or DNS fails"); outbound MX lookups defer (4.4.3), never bounce.',
  '- A remote MX reply that is not a reply code (999, no code, a bare "2") is deferred (4.5.0), never taken as delivered',
  '  or bounced.',
  '- With FILTER_FAILURE=tempfail an engine away makes the filter answer 503 on /healthz with a check naming the engine',
  '  as a dependency: the supervisor waits for the engine and does not restart the filter (a restart cures nothing).',
  '',
  '## Not covered yet',
  '- A client sending its message at exactly SMTP_MIN_DATA_RATE keeps its session for as long as the message size',
  '  allows (MESSAGE_SIZE_LIMIT / rate: 25 MiB at 500 B/s is about 14 hours); slower clients are cut off (idle.test.ts).',
  '',
]
fs.writeFileSync(path.join(root, 'RELIABILITY.md'), out.join('\n'))
console.log(`RELIABILITY.md: ${rows.length} row(s)`)
