// Delivery alone: the delivery service (a process of its own, as in the appliance) takes bursts of
// messages that land in its spool's queue/, and the script prints how fast they reached the
// mailboxes and the service's CPU per message. No SMTP, no ingress, no Postfix: a change to
// delivery's path is measured without the noise of the rest of the machine's work.
//
//   node --import tsx --conditions=source bench/delivery.ts
//   env: MESSAGES (2000 a burst), RECIPIENTS (1), SIZE (2048 bytes of body), FORMAT (maildir),
//        BURSTS (4: the first is a warm-up, not printed), plus any setting for the service
//        (DELIVERY_WORKERS=..., LOG_LEVEL=...).
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { openSpool } from '@facteur/spool'
import { ROOT, loopbackEnv } from '../test/support/appliance.js'
import { countMaildirs, mboxCounter } from '../test/support/postfix-local.js'
import { benchMessage } from './smtp-load.js'
import { CLOCK_TICK_MS, procStat } from './machine.js'

const env = process.env
const MESSAGES = Number(env.MESSAGES ?? 2000)
const RECIPIENTS = Number(env.RECIPIENTS ?? 1)
const SIZE = Number(env.SIZE ?? 2048)
const FORMAT = (env.FORMAT ?? 'maildir') as 'maildir' | 'mbox'
const BURSTS = Number(env.BURSTS ?? 4)
/** Messages queued at once (as many ingress sessions committing side by side). */
const WRITERS = 50
const USERS = ['bench', ...Array.from({ length: RECIPIENTS - 1 }, (_, i) => `${i + 2}bench`)]
/** user and system CPU of a process so far, ms. */
async function cpuOf(pid: number): Promise<{ user: number; system: number }> {
  const f = await procStat(pid)
  if (!f) throw new Error(`process ${pid} has gone`)
  return { user: Number(f[11]) * CLOCK_TICK_MS, system: Number(f[12]) * CLOCK_TICK_MS }
}

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-bench-delivery-'))
const loop = loopbackEnv(dir)
for (const d of [loop.CONFIG_DIR, loop.SPOOL_DIR, loop.MAIL_DIR]) await fs.mkdir(d, { recursive: true })
const serviceEnv: Record<string, string> = { ...process.env, ...loop, MAILBOX_FORMAT: FORMAT, LOG_FORMAT: 'json' } as Record<string, string>
const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', path.join(ROOT, 'services/delivery/src/main.ts')], {
  cwd: ROOT,
  env: serviceEnv,
  stdio: ['ignore', 'pipe', 'inherit'],
})
let output = ''
child.stdout.setEncoding('utf8').on('data', (c: string) => (output = (output + c).slice(-100_000)))
const stop = async (): Promise<void> => {
  child.kill('SIGTERM')
  await new Promise((resolve) => child.once('exit', resolve))
  await fs.rm(dir, { recursive: true, force: true })
}

try {
  for (let i = 0; i < 600 && !/health/.test(output); i++) await sleep(50)
  if (!/health/.test(output)) throw new Error(`delivery did not start:\n${output}`)
  const spool = await openSpool(loop.SPOOL_DIR)
  const delivered = FORMAT === 'maildir' ? () => countMaildirs(loop.MAIL_DIR, USERS) : mboxCounter(loop.MAIL_DIR, USERS)
  const recipients = USERS.map((u) => ({
    address: `${u}@ours.example`,
    original: `${u}@ours.example`,
    status: 'pending' as const,
    attempts: 0,
  }))
  console.log(
    `delivery alone (bench/delivery.ts), ${MESSAGES} messages a burst of ${SIZE} bytes to ${RECIPIENTS} recipient(s), ${FORMAT}, ${WRITERS} writers queueing, Node ${process.version}, ${os.cpus().length} CPUs`,
  )
  let total = 0
  for (let burst = 0; burst < BURSTS; burst++) {
    const before = await cpuOf(child.pid!)
    const t0 = performance.now()
    let next = 0
    await Promise.all(
      Array.from({ length: WRITERS }, async () => {
        for (let n = next++; n < MESSAGES; n = next++) {
          const now = Date.now()
          const message = benchMessage(SIZE, recipients[0].address, n)
          await spool.enqueue(message, {
            sender: 'load@client.example',
            recipients: recipients.map((r) => ({ ...r })),
            receivedAt: now,
            nextAttempt: now,
            client: { ip: '127.0.0.1', helo: 'client.example', tls: false },
            source: 'bench',
          })
        }
      }),
    )
    const queued = performance.now()
    total += MESSAGES * RECIPIENTS
    for (let i = 0; (await delivered()) < total; i++) {
      if (i > 6000) throw new Error(`not delivered after 5 minutes: ${await delivered()} of ${total}`)
      await sleep(50)
    }
    const done = performance.now()
    const after = await cpuOf(child.pid!)
    if (burst === 0) continue // the warm-up: V8 compiles delivery's hot paths
    const user = (after.user - before.user) / MESSAGES
    const system = (after.system - before.system) / MESSAGES
    console.log(
      `burst ${burst}: queued in ${((queued - t0) / 1000).toFixed(2)} s, all delivered after ${((done - t0) / 1000).toFixed(2)} s: ${(MESSAGES / ((done - t0) / 1000)).toFixed(0)} msg/s; delivery CPU ${(user + system).toFixed(2)} ms a message (user ${user.toFixed(2)}, system ${system.toFixed(2)})`,
    )
  }
} finally {
  await stop()
}
