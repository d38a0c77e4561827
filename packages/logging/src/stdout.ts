// stdout for the log lines, written once per turn of the event loop: the lines logged meanwhile go
// out together, in one write(2) per 4 KiB, instead of one write(2) each (Node writes a pipe
// synchronously, and the supervisor's pipe, or Docker's, is read by another process woken for
// each). What is pending when the process exits is written before it goes. A kill -9 loses the
// lines of the turn it interrupts (at most one turn's).
import fs from 'node:fs'
import TransportStream from 'winston-transport'

const MESSAGE = Symbol.for('message')

/**
 * PIPE_BUF on Linux: a write(2) of at most this many bytes to a pipe is never interleaved with
 * another process's (in process mode every service writes to the supervisor's stdout). A line
 * longer than this goes alone, as it did before.
 */
const PIPE_BUF = 4096

let lines: string[] = []
let scheduled = false
let exitHooked = false

/** The pending lines in writes of at most PIPE_BUF bytes each (a longer line alone). */
function takeChunks(): string[] {
  const out: string[] = []
  let chunk = ''
  let bytes = 0
  for (const line of lines) {
    const n = Buffer.byteLength(line)
    if (bytes && bytes + n > PIPE_BUF) {
      out.push(chunk)
      chunk = ''
      bytes = 0
    }
    chunk += line
    bytes += n
  }
  if (chunk) out.push(chunk)
  lines = []
  return out
}

function flush(): void {
  scheduled = false
  for (const chunk of takeChunks()) process.stdout.write(chunk)
}

function flushAtExit(): void {
  for (const chunk of takeChunks()) {
    try {
      fs.writeSync(1, chunk)
    } catch {
      return // stdout closed: nothing more can be said
    }
  }
}

/** A winston transport to the process's stdout, batched (every logger of the process shares the batch, so lines stay in order). */
export class BatchedStdout extends TransportStream {
  constructor() {
    super()
    if (!exitHooked) {
      exitHooked = true
      process.on('exit', flushAtExit)
    }
  }

  override log(info: Record<string | symbol, unknown>, next: () => void): void {
    lines.push(`${String(info[MESSAGE])}\n`)
    if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
    next()
  }
}
