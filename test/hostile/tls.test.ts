// TLS scanned with Debian's testssl.sh on :25 (STARTTLS), 587 (STARTTLS) and 465 (implicit):
// no protocol below TLS 1.2, no NULL, anonymous, export, LOW or 3DES/IDEA cipher. Offline: the
// address is given (--ip, --nodns none), only the protocol and cipher-category checks run.
// AUTH before TLS, sender spoofing and brute-force bans are auth.test.ts's.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { run } from '../support/process.js'
import { record, totalRestarts } from './figures.js'
import { startListeners } from './listeners.js'

type Finding = { id: string; severity: string; finding: string }

const TESTSSL = '/usr/bin/testssl'
const present = await fs.access(TESTSSL).then(
  () => true,
  () => false,
)

test(
  'testssl.sh finds nothing below TLS 1.2 and no weak cipher on 25, 587 and 465',
  { skip: !present && 'testssl.sh is not installed (Debian package testssl.sh)', timeout: 300_000 },
  async (t) => {
    const started = Date.now()
    const { app, mem } = await startListeners(t)
    const targets = [
      { name: ':25', port: app.port('smtp-ingress', 'smtp'), starttls: true },
      { name: ':587', port: app.port('submission', 'submission'), starttls: true },
      { name: ':465', port: app.port('submission', 'submissions'), starttls: false },
    ]
    // The three scans run side by side: each is mostly waiting on openssl handshakes.
    const scans = await Promise.all(
      targets.map(async (target) => {
        const json = path.join(app.dir, `testssl-${target.port}.json`)
        const args = [
          '--quiet',
          '--color',
          '0',
          '--warnings',
          'off',
          '--openssl',
          '/usr/bin/openssl',
          '--ip',
          '127.0.0.1',
          '--nodns',
          'none',
          '--connect-timeout',
          '10',
          '--openssl-timeout',
          '10',
          '-p',
          '-s',
          '--jsonfile',
          json,
        ]
        if (target.starttls) args.push('--starttls', 'smtp')
        const r = await run(TESTSSL, [...args, `127.0.0.1:${target.port}`], { timeoutMs: 240_000 })
        const findings = JSON.parse(await fs.readFile(json, 'utf8').catch(() => '[]')) as Finding[]
        const get = (id: string): string => findings.find((f) => f.id === id)?.finding ?? 'missing'
        return { ...target, r, findings, get }
      }),
    )
    const summary = scans.map(
      (s) =>
        `${s.name}: ${['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1', 'TLS1_2', 'TLS1_3'].map((id) => `${id} ${s.get(id)}`).join(', ')}; CBC (AVERAGE) ${s.get('cipherlist_AVERAGE')}`,
    )
    const restarts = await totalRestarts(app)
    await mem.stop()
    record({
      test: 'TLS scan (tls.test.ts)',
      load: 'testssl.sh 3.0 -p -s on :25 and :587 (STARTTLS) and :465, side by side',
      injected: 'SSLv2, SSLv3, TLS 1.0, 1.1 handshakes; NULL, aNULL, EXPORT, LOW, 3DES/IDEA cipher categories',
      restarts,
      peakRssMiB: mem.max(),
      result: summary.join(' | '),
      durationS: Math.round((Date.now() - started) / 1000),
    })
    for (const s of scans) {
      assert.equal(s.r.timedOut, false, `${s.name}: testssl timed out`)
      for (const id of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1']) assert.match(s.get(id), /^not offered/, `${s.name} ${id}`)
      assert.match(s.get('TLS1_2'), /^offered/, `${s.name} TLS1_2`)
      for (const id of ['cipherlist_NULL', 'cipherlist_aNULL', 'cipherlist_EXPORT', 'cipherlist_LOW', 'cipherlist_3DES_IDEA'])
        assert.match(s.get(id), /^not offered/, `${s.name} ${id}`)
    }
    assert.equal(restarts, 0)
  },
)
