// The real `swaks` SMTP client, and a reader for its transcript.
import { run } from './process.js'

export interface SwaksResult {
  /** swaks' exit code (`man swaks`, EXIT CODES): 0 ok, 2 cannot connect, 21 banner, 22 HELO/EHLO,
   * 23 MAIL, 24 no RCPT accepted, 25 DATA refused, 26 message refused after '.', 28 AUTH, 29 TLS;
   * null when killed by the timeout. */
  code: number | null
  /** The transcript (see transcript()). */
  stdout: string
  /** swaks' own errors, lines starting with '***'. */
  stderr: string
  timedOut: boolean
}

/**
 * Runs `swaks` with args (e.g. ['--server', `127.0.0.1:${port}`, '--from', 'a@b.example',
 * '--to', 'c@d.example', '--timeout', '5']), killed after timeoutMs (default 30 s). Never throws for
 * an SMTP failure: assert on code and on transcript()/lastReply().
 */
export async function swaks(args: string[], options: { timeoutMs?: number } = {}): Promise<SwaksResult> {
  const result = await run('swaks', args, { timeoutMs: options.timeoutMs ?? 30_000 })
  return { code: result.code, stdout: result.stdout, stderr: result.stderr, timedOut: result.timedOut }
}

/**
 * One message to 127.0.0.1:port: from the loopback address `client` when given (each 127.0.0.0/8
 * address is a client of its own to the MX's policies), to `to` (several joined by commas, as
 * swaks takes them), with an optional Subject and body; swaks' timeout 15 s.
 */
export function swaksMail(
  port: number,
  mail: { client?: string; sender: string; to: string | string[]; subject?: string; body?: string },
): Promise<SwaksResult> {
  return swaks([
    '--server',
    `127.0.0.1:${port}`,
    ...(mail.client ? ['--local-interface', mail.client] : []),
    '--from',
    mail.sender,
    '--to',
    [mail.to].flat().join(','),
    ...(mail.subject === undefined ? [] : ['--header', `Subject: ${mail.subject}`]),
    ...(mail.body === undefined ? [] : ['--body', mail.body]),
    '--timeout',
    '15',
  ])
}

/** swaks on a submission port with STARTTLS, authenticated as `user` (AUTH PLAIN), then `args`. */
export function swaksSubmit(port: number, user: string, password: string, args: string[]): Promise<SwaksResult> {
  return swaks(['--server', `127.0.0.1:${port}`, '--tls', '--auth', 'PLAIN', '--auth-user', user, '--auth-password', password, ...args])
}

/** One command swaks sent and the reply it got. */
export interface SwaksExchange {
  /** The line sent: 'EHLO vm', 'RCPT TO:<c@d.example>'; 'CONNECT' for the greeting; '.' for the
   * reply after the message data; '' for a reply nothing asked for. */
  command: string
  /** All lines of the reply joined with '\n', e.g. '250-mx.example\n250 PIPELINING'; or swaks'
   * note when no reply came ('Timeout (5 secs) waiting for server response'). */
  reply: string
  /** The reply came inside TLS. */
  tls: boolean
  /** swaks did not expect this reply code (its '<**' and '<~*' hints). */
  unexpected: boolean
}

// `man swaks`, TRANSCRIPT: a three-character hint, a space, then the line as sent or received.
const sendHints = new Set([' ->', ' ~>', '**>', '*~>'])
const receiveHints = new Set(['<- ', '<~ ', '<**', '<~*'])

/**
 * Pairs swaks' sent lines with the replies in its transcript (a SwaksResult or its stdout). Pipelined commands
 * (--pipeline) are matched to replies in order. What follows a 354 (the message) or a 334 (AUTH
 * steps) is not a command: the next reply counts as the reply to '.' or to the same AUTH, so
 * lastReply(out, 'AUTH') is the final 235 or 535.
 */
export function transcript(out: string | SwaksResult): SwaksExchange[] {
  const stdout = typeof out === 'string' ? out : out.stdout
  const exchanges: SwaksExchange[] = []
  const pending: string[] = []
  let continuation: string | undefined // set while the server waits for more than a command
  let reply: string[] = []
  let tls = false
  let unexpected = false
  for (const line of stdout.split(/\r?\n/)) {
    const hint = line.slice(0, 3)
    const text = line.slice(4)
    if (sendHints.has(hint)) {
      if (continuation === undefined) pending.push(text)
      continue
    }
    if (!receiveHints.has(hint)) continue
    reply.push(text)
    tls ||= hint.includes('~')
    unexpected ||= hint.includes('*')
    // RFC 5321 §4.2.1: "250-" continues a reply, "250 " or a bare "250" ends it.
    if (/^\d{3}-/.test(text)) continue
    const joined = reply.join('\n')
    let command: string
    if (continuation !== undefined) command = continuation
    else if (exchanges.length === 0 && pending.length === 0) command = 'CONNECT'
    else command = pending.shift() ?? ''
    continuation = undefined
    if (/^DATA$/i.test(command) && joined.startsWith('354')) continuation = '.'
    else if (/^AUTH\b/i.test(command) && joined.startsWith('334')) continuation = command
    exchanges.push({ command, reply: joined, tls, unexpected })
    reply = []
    tls = false
    unexpected = false
  }
  return exchanges
}

/** Every reply to a verb, e.g. repliesTo(out, 'RCPT') for one reply per recipient. */
export function repliesTo(out: string | SwaksResult, verb: string): string[] {
  const wanted = verb.toUpperCase()
  return transcript(out)
    .filter((exchange) => exchange.command.split(/[ :]/)[0].toUpperCase() === wanted)
    .map((exchange) => exchange.reply)
}

/**
 * The last reply to a command, by its verb: 'CONNECT' (greeting), 'EHLO', 'STARTTLS', 'AUTH'
 * (its final reply), 'MAIL', 'RCPT', 'DATA' (the 354), '.' (the verdict on the message), 'QUIT'.
 * undefined when swaks never got that far.
 */
export function lastReply(out: string | SwaksResult, verb: string): string | undefined {
  return repliesTo(out, verb).at(-1)
}
