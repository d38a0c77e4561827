// The services' log lines on stdout, batched once per turn of the event loop (src/stdout.ts):
// real processes writing to one pipe, as every service does to the supervisor's in process mode,
// traced by strace to count their write(2) calls.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

// 50 lines of about 400 bytes in one turn, one line longer than a pipe's atomic write, and a last
// line logged just before process.exit() (no later turn flushes it: the exit hook must).
const CHILD = `
import { createLogger } from '${pathToFileURL(path.join(ROOT, 'packages/logging/src/index.ts')).href}'
const log = createLogger({ service: 'batch', format: 'json' })
for (let seq = 0; seq < 50; seq++) log.info('line', { seq, pad: 'x'.repeat(300) })
log.info('long', { seq: 50, pad: 'y'.repeat(6000) })
setImmediate(() => {
  log.info('last', { seq: 51 })
  process.exit(0)
})
`

test('two processes log to one pipe: every line whole and in order, a few writes each, the last line flushed at exit', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-log-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  const script = path.join(dir, 'child.mjs')
  await fs.writeFile(script, CHILD)
  const trace = path.join(dir, 'trace')
  const node = `${process.execPath} --import tsx --conditions=source ${script}`
  const child = spawn('strace', ['-f', '-e', 'trace=write', '-o', trace, 'sh', '-c', `${node} & ${node} & wait`], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c))
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  assert.equal(code, 0)

  const lines = out.split('\n').filter((l) => l !== '')
  assert.equal(lines.length, 2 * 52)
  const seqs = new Map<number, number[]>()
  for (const line of lines) {
    const entry = JSON.parse(line) as { pid?: number; seq: number; service: string }
    assert.equal(entry.service, 'batch')
    // The two children's lines, told apart by the order they come in: each child's must count up.
    const own = [...seqs.values()].find((s) => s[s.length - 1] === entry.seq - 1 && entry.seq > 0)
    if (own) own.push(entry.seq)
    else seqs.set(seqs.size, [entry.seq])
  }
  assert.deepEqual(
    [...seqs.values()].map((s) => s.length),
    [52, 52],
  )

  // The writes to stdout, per process: 52 lines (about 27 KB) in a handful of write(2) calls of at
  // most 4 KiB each but the long line's, never one per line. (Log lines start with {"level": tsx's
  // esbuild helper writes to a stdout of its own.) The size counted is the one asked for: when the
  // pipe is full (a busy reader) the kernel takes part of a write, and the rest follows mid-line;
  // then libuv may also send what queued behind it in one writev(2), which this trace does not
  // count (seen once in CI under load: 4080, 4090, 4090, 100 and the long line in a writev).
  const writes = new Map<string, number[]>()
  for (const l of (await fs.readFile(trace, 'utf8')).split('\n')) {
    const m = /^(\d+)\s+write\(1, "\{\\"level\\".*, (\d+)\)\s+=\s+\d+$/.exec(l)
    if (m) writes.set(m[1], [...(writes.get(m[1]) ?? []), Number(m[2])])
  }
  assert.equal(writes.size, 2, JSON.stringify([...writes]))
  for (const sizes of writes.values()) {
    assert.ok(sizes.length <= 12, `${sizes.length} writes: ${sizes.join(', ')}`)
    assert.ok(sizes.filter((n) => n > 4096).length <= 1, `at most one write above 4 KiB, the long line's: ${sizes.join(', ')}`)
  }
})
