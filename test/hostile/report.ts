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
  '- AUTH before TLS refused (not offered; MAIL gets 530 5.7.0), sender spoofing refused (553 5.7.1, MAIL FROM and From:),',
  '  brute force banned per address (454 4.7.0) and slowed per account: test/submission.test.ts.',
  '- Local parts that would leave MAIL_DIR refused at RCPT (553 5.1.3): test/ingress.test.ts; kill -9 at the worst',
  '  moments of spool and mailbox writes, fsync order under strace: test/durability.test.ts.',
  '',
  '## Not covered yet',
  '- spamd, DNS and the remote MX stopping, hanging or answering garbage mid-load (only clamd is stopped here).',
  '- A client sending its message at exactly SMTP_MIN_DATA_RATE keeps its session for as long as the message size',
  '  allows (MESSAGE_SIZE_LIMIT / rate: 25 MiB at 500 B/s is about 14 hours); slower clients are cut off (idle.test.ts).',
  '',
]
fs.writeFileSync(path.join(root, 'RELIABILITY.md'), out.join('\n'))
console.log(`RELIABILITY.md: ${rows.length} row(s)`)
