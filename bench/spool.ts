// Benchmark (not a test): the spool's commit alone, the part of each 250 that is storage. Writes
// 2 KB messages through begin/write/commit from C concurrent writers, as the receiving services
// do, and prints commits per second, the CPU time per commit (user + system, libuv's pool
// included: process.cpuUsage()) and the commit's p50/p99. Several rounds, each in a fresh spool;
// files are left in place until the end (a deletion burst slows the next round on some file
// systems: bench/README.md).
//   npm run bench:spool [-- --messages=3000 --writers=50 --rounds=3]
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { openSpool } from '@facteur/spool'
import { percentile } from './smtp-load.js'
import { envelopeDraft } from '../test/support/queue.js'

const arg = (name: string, fallback: number): number =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback)
const N = arg('messages', 3000)
const WRITERS = arg('writers', 50)
const ROUNDS = arg('rounds', 3)
const body = Buffer.alloc(2048, 'x')
const dirs: string[] = []

console.log(
  `spool commit, ${N} messages of 2 KB, ${WRITERS} writers, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 4}, in ${os.tmpdir()}`,
)
for (let round = 1; round <= ROUNDS; round++) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-bench-spool-'))
  dirs.push(dir)
  const spool = await openSpool(dir)
  const latencies: number[] = []
  let next = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      while (next++ < N) {
        const w = await spool.begin()
        await w.write(body)
        const s = performance.now()
        await w.commit(envelopeDraft({ to: 'bench@ours.example', source: 'bench' }))
        latencies.push(performance.now() - s)
      }
    }),
  )
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  console.log(
    `round ${round}: ${(N / seconds).toFixed(0)} commits/s, CPU ${((cpu.user + cpu.system) / 1000 / N).toFixed(2)} ms a commit (user ${(cpu.user / 1000 / N).toFixed(2)}), commit p50 ${percentile(latencies, 50).toFixed(1)} / p99 ${percentile(latencies, 99).toFixed(1)} ms`,
  )
}
for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true })
