// Postfix's smtp-sink as a scriptable remote SMTP server for delivery tests.
import { chown, mkdir, readdir, readFile, stat, chmod } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './ports.js'
import { isRoot, startLoopbackDaemon, systemUser, tempDir, type Outage } from './process.js'

/** Command names as smtp-sink knows them: CONNECT, HELO, EHLO, LHLO, MAIL, RCPT, VRFY, DATA, '.', RSET, NOOP, QUIT. */
export type SinkCommand = 'CONNECT' | 'HELO' | 'EHLO' | 'LHLO' | 'MAIL' | 'RCPT' | 'VRFY' | 'DATA' | '.' | 'RSET' | 'NOOP' | 'QUIT'

export interface SmtpSinkOptions {
  /** Keep each message in a file (smtp-sink -d), for messages(). Default true. */
  dump?: boolean
  /** -r: answer these commands with the soft reply, '450 4.3.0 Error: command failed' or softReply. Implies -p. */
  softReject?: SinkCommand[]
  /** -f: answer these commands with the hard reply, '500 5.3.0 Error: command failed' or hardReply. Implies -p. */
  hardReject?: SinkCommand[]
  /** -b: the soft reject reply, e.g. '451 4.7.1 Try again later'. */
  softReply?: string
  /** -B: the hard reject reply, e.g. '550 5.1.1 No such user'. */
  hardReply?: string
  /** -q: close the connection without replying after these commands ('CONNECT': right after accept). */
  disconnect?: SinkCommand[]
  /** -Q: reply with a 421 and close after these commands. */
  shutdown?: SinkCommand[]
  /** -W CONNECT:3600: accept the connection but never send the greeting. */
  noGreeting?: boolean
  /** -W CMD:seconds, e.g. { DATA: 5 } to answer DATA late (-w is the same for DATA). */
  delay?: Partial<Record<SinkCommand, number>>
  /** -h: the name in the greeting and EHLO reply (default 'smtp-sink'). */
  hostname?: string
  /** Anything else from `man smtp-sink`, e.g. ['-p'] (no PIPELINING), ['-e'] (no ESMTP), ['-E'] (no ENHANCEDSTATUSCODES). */
  extraArgs?: string[]
}

/** One dumped transaction, split into smtp-sink's X-* records and the message as received. */
export interface SinkMessage {
  helo?: string
  /** Arguments of MAIL, e.g. '<a@b.example> SIZE=123'. */
  mailArgs: string
  /** Arguments of each RCPT, e.g. ['<c@d.example> NOTIFY=NEVER']. */
  rcptArgs: string[]
  /** The message (header + body) exactly as the client sent it, LF line ends, dot-stuffing undone. */
  message: string
  /**
   * The transaction reached its "." : the dump ends with the empty line smtp-sink writes after the
   * message. A sink killed mid-transaction leaves what it had flushed (4 KiB blocks, cut mid-line).
   */
  complete: boolean
  /** The whole dump file. */
  raw: string
}

/** From Outage: stop() (connections refused; what it received is kept), start() on the same port, pause() (never greets), resume(). */
export interface SmtpSink extends Outage {
  port: number
  /** Raw dump files, oldest first. */
  messages(): Promise<string[]>
  /** messages(), parsed. */
  received(): Promise<SinkMessage[]>
  /** Resolves with received() once at least `count` messages are there; rejects after timeoutMs. */
  waitForMessages(count: number, timeoutMs?: number): Promise<SinkMessage[]>
  /** smtp-sink's stdout and stderr so far (add '-v' to extraArgs for the whole dialogue). */
  output(): string
  close(): Promise<void>
}

/**
 * Starts `smtp-sink` on 127.0.0.1:<free port>. It accepts everything unless told otherwise; the
 * rejects apply to every instance of a command (smtp-sink cannot reject one recipient and accept
 * another, and has no STARTTLS: use startScriptedMx from scripted-mx.ts for those).
 * As root it runs with -u nobody and the dump directory is owned by nobody.
 */
export async function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const { dump = true } = options
  const dir = await tempDir('smtp-sink')
  await chmod(dir, 0o755)
  const dumpDir = join(dir, 'dump')
  await mkdir(dumpDir)
  const args: string[] = []
  if (isRoot()) {
    const nobody = await systemUser('nobody')
    await chown(dumpDir, nobody.uid, nobody.gid)
    args.push('-u', 'nobody')
  }
  if (dump) args.push('-d', `${dumpDir}/`)
  if (options.softReject?.length) args.push('-r', options.softReject.join(','))
  if (options.hardReject?.length) args.push('-f', options.hardReject.join(','))
  if (options.softReply) args.push('-b', options.softReply)
  if (options.hardReply) args.push('-B', options.hardReply)
  if (options.disconnect?.length) args.push('-q', options.disconnect.join(','))
  if (options.shutdown?.length) args.push('-Q', options.shutdown.join(','))
  if (options.noGreeting) args.push('-W', 'CONNECT:3600', '-t', '3600')
  for (const [command, seconds] of Object.entries(options.delay ?? {})) args.push('-W', `${command}:${seconds}`)
  if (options.hostname) args.push('-h', options.hostname)
  args.push(...(options.extraArgs ?? []))
  const port = await freePort()
  args.push(`127.0.0.1:${port}`, '64')

  const daemon = await startLoopbackDaemon('/usr/sbin/smtp-sink', args, port, dir)

  const messages = async (): Promise<string[]> => {
    const names = await readdir(dumpDir)
    const files = await Promise.all(
      names.map(async (name) => {
        const path = join(dumpDir, name)
        return { path, mtime: (await stat(path, { bigint: true })).mtimeNs }
      }),
    )
    files.sort((a, b) => (a.mtime < b.mtime ? -1 : a.mtime > b.mtime ? 1 : 0))
    return Promise.all(files.map((file) => readFile(file.path, 'utf8')))
  }
  const received = async () => (await messages()).map(parseSinkDump)

  return {
    ...daemon,
    messages,
    received,
    async waitForMessages(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const found = await received()
        if (found.length >= count) return found
        if (Date.now() > deadline) throw new Error(`smtp-sink has ${found.length} of ${count} messages after ${timeoutMs} ms`)
        await sleep(50)
      }
    },
  }
}

/** Splits an smtp-sink dump file (`man smtp-sink`, DUMP FILE FORMAT) into its parts. */
export function parseSinkDump(raw: string): SinkMessage {
  const lines = raw.split('\n')
  const result: SinkMessage = { mailArgs: '', rcptArgs: [], message: '', complete: raw.endsWith('\n\n'), raw }
  let i = 0
  for (; i < lines.length; i++) {
    const line = lines[i]
    if (line.startsWith('X-Helo-Args: ')) result.helo = line.slice('X-Helo-Args: '.length)
    else if (line.startsWith('X-Mail-Args: ')) result.mailArgs = line.slice('X-Mail-Args: '.length)
    else if (line.startsWith('X-Rcpt-Args: ')) result.rcptArgs.push(line.slice('X-Rcpt-Args: '.length))
    else if (line.startsWith('Received: ')) break
  }
  // smtp-sink's Received: header is three lines; the client's message follows, then one empty line.
  const body = lines.slice(i + 3)
  if (body.at(-1) === '') body.pop()
  if (body.at(-1) === '') body.pop()
  result.message = body.length ? `${body.join('\n')}\n` : ''
  return result
}
