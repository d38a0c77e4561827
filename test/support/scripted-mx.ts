// A remote MX whose replies a test chooses per recipient, with optional STARTTLS (smtp-server).
// For what smtp-sink cannot do: accept one recipient and refuse another, offer TLS.
import type { AddressInfo } from 'node:net'
import { generate } from 'selfsigned'
import { SMTPServer, type SMTPServerSession } from 'smtp-server'

export interface ScriptedMxOptions {
  /** A 4xx or 5xx reply per recipient (address compared case-insensitively), e.g.
   * { 'gone@remote.example': '550 5.1.1 No such user' }; other recipients get '250 Accepted'. */
  rcpt?: Record<string, string>
  /** A 4xx or 5xx reply to every MAIL FROM instead of '250 Accepted', e.g. '451 4.7.1 Greylisted'. */
  mail?: string
  /** Reply after the message data instead of '250 Ok: queued', e.g. '554 5.7.1 Spam' or '250 2.0.0 Ok id=1'. */
  data?: string
  /** Offer STARTTLS with a fresh self-signed certificate for hostname (or `certificate`). */
  tls?: boolean
  /** The certificate STARTTLS presents (PEM), instead of a fresh self-signed one. */
  certificate?: { key: string; cert: string }
  /** Refuse MAIL before STARTTLS ('530 5.7.0 Must issue a STARTTLS command first'). */
  requireTls?: boolean
  /** Greeting and certificate name, default 'mx.remote.example'. */
  hostname?: string
  /** Announce DSN (RFC 3461) in the EHLO reply, so clients pass NOTIFY, ORCPT, RET and ENVID. */
  dsn?: boolean
}

/** One message the MX accepted. */
export interface MxMessage {
  helo: string
  from: string
  /** The recipients that got a 2xx. */
  to: string[]
  /** The message bytes as received (CRLF line ends, dot-stuffing undone). */
  data: Buffer
  /** STARTTLS was in effect. */
  tls: boolean
  /** The client's address as this server saw it. */
  remoteAddress: string
  /** smtp-server's id of the connection that carried the message (several messages: a reused connection). */
  session: string
  /** RFC 3461 parameters of each accepted recipient, in `to` order (with `dsn: true`). */
  rcptDsn: ({ notify?: string[]; orcpt?: string } | undefined)[]
}

export interface ScriptedMx {
  port: number
  /** Messages accepted so far, in arrival order (a live array). */
  messages: MxMessage[]
  /** Recipients refused so far (scripted 4xx/5xx replies), in order, with the sender of the transaction. */
  refused: { from: string; to: string; reply: string }[]
  /** Connections accepted so far. */
  readonly connections: number
  /** The most connections that were open at once. */
  readonly maxOpen: number
  close(): Promise<void>
}

/**
 * Starts an smtp-server on 127.0.0.1:<free port> answering as scripted; replies are given whole
 * ('550 5.1.1 No such user'), the code is taken from their first three digits.
 */
export async function startScriptedMx(options: ScriptedMxOptions = {}): Promise<ScriptedMx> {
  const hostname = options.hostname ?? 'mx.remote.example'
  const rcpt = new Map(Object.entries(options.rcpt ?? {}).map(([address, reply]) => [address.toLowerCase(), reply]))
  const messages: MxMessage[] = []
  const refused: ScriptedMx['refused'] = []
  let connections = 0
  let open = 0
  let maxOpen = 0
  const pems = options.certificate
    ? { private: options.certificate.key, cert: options.certificate.cert }
    : options.tls
      ? await generate([{ name: 'commonName', value: hostname }], { keySize: 2048 })
      : undefined

  const server = new SMTPServer({
    name: hostname,
    banner: 'ESMTP scripted-mx',
    logger: false,
    closeTimeout: 1000,
    disableReverseLookup: true, // it would ask the system resolver, off the loopback
    authOptional: true,
    disabledCommands: ['AUTH', ...(options.tls ? [] : ['STARTTLS'])],
    // Replies carry their own enhanced status codes (RFC 3463), so smtp-server must not add one.
    hideENHANCEDSTATUSCODES: true,
    hideDSN: !options.dsn,
    key: pems?.private,
    cert: pems?.cert,
    onConnect(_session, callback) {
      connections++
      maxOpen = Math.max(maxOpen, ++open)
      callback()
    },
    onClose() {
      open--
    },
    onMailFrom(_address, session, callback) {
      if (options.requireTls && !session.secure) return callback(replyError('530 5.7.0 Must issue a STARTTLS command first'))
      callback(options.mail && !options.mail.startsWith('2') ? replyError(options.mail) : null)
    },
    onRcptTo(address, session, callback) {
      const reply = rcpt.get(address.address.toLowerCase())
      if (reply && !reply.startsWith('2')) {
        const from = session.envelope.mailFrom
        refused.push({ from: from ? from.address : '', to: address.address, reply })
        return callback(replyError(reply))
      }
      callback(null)
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', () => {
        if (options.data && !options.data.startsWith('2')) return callback(replyError(options.data))
        messages.push(record(session, Buffer.concat(chunks)))
        callback(null, options.data ? options.data.slice(4) : 'Ok: queued')
      })
    },
  })
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.server.address() as AddressInfo
  return {
    port,
    messages,
    refused,
    get connections() {
      return connections
    },
    get maxOpen() {
      return maxOpen
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

function record(session: SMTPServerSession, data: Buffer): MxMessage {
  const from = session.envelope.mailFrom
  return {
    helo: session.hostNameAppearsAs,
    from: from ? from.address : '',
    to: session.envelope.rcptTo.map((address) => address.address),
    data,
    tls: session.secure,
    remoteAddress: session.remoteAddress,
    session: session.id,
    rcptDsn: session.envelope.rcptTo.map((address) => address.dsn && { notify: address.dsn.notify, orcpt: address.dsn.orcpt ?? undefined }),
  }
}

/** An Error smtp-server turns into the given reply: responseCode from the first three digits. */
function replyError(reply: string): Error {
  const match = /^(\d{3}) ?(.*)$/.exec(reply)
  if (!match) throw new Error(`not an SMTP reply: ${reply}`)
  return Object.assign(new Error(match[2]), { responseCode: Number(match[1]) })
}
