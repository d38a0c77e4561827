// Starts the submission service in this process on loopback ports, with a temporary config
// directory and spool, for tests that drive the real server.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import net from 'node:net'
import tls from 'node:tls'
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { loadConfig, type Config } from '@facteur/config'
import { createLogger } from '@facteur/logging'
import { openSpool, type Spool } from '@facteur/spool'
import { openAccounts } from '@facteur/accounts'
import { openCertificates } from '@facteur/certs'
import { startSubmission, type ListenerName } from '@facteur/submission'
import { smtpSession, type SmtpSession } from '../../../test/support/smtp-session.js'

export type TestSubmission = {
  config: Config
  spool: Spool
  dir: string
  port(name: ListenerName): number
  /** A raw client session, closed before the server at the end of the test. */
  session(name: ListenerName): Promise<SmtpSession>
  /** EHLO, STARTTLS, EHLO and AUTH PLAIN on the 587 listener; asserts nothing. */
  authenticated(user: string, password: string): Promise<SmtpSession>
}

export async function startTestSubmission(
  t: TestContext,
  opts: {
    users?: Record<string, string>
    aliases?: string
    env?: Record<string, string>
    /** Plays the Docker bridge gateway every client of a published port comes from (userland proxy). */
    gateway?: string
  } = {},
): Promise<TestSubmission> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-submission-'))
  const configDir = path.join(dir, 'config')
  await fs.mkdir(configDir)
  const users = Object.entries(opts.users ?? { 'alice@ours.example': 'alice-secret' })
  await fs.writeFile(path.join(configDir, 'users'), users.map(([u, p]) => `${u}:{PLAIN}${p}\n`).join(''))
  await fs.writeFile(path.join(configDir, 'aliases'), opts.aliases ?? '')
  const config = loadConfig({
    MAIL_DOMAIN: 'ours.example',
    MAIL_HOSTNAME: 'mx.ours.example',
    CONFIG_DIR: configDir,
    SPOOL_DIR: path.join(dir, 'spool'),
    MAIL_DIR: path.join(dir, 'mail'),
    SUBMISSION_LISTEN: '127.0.0.1',
    SUBMISSION_PORT: '0',
    SUBMISSIONS_PORT: '0',
    // No content filter here; test/submission-filter.test.ts runs the appliance with one.
    FILTER_URL: 'off',
    ...opts.env,
  })
  const logger = createLogger({ service: 'submission', level: 'error', format: 'text' })
  const spool = await openSpool(config.spoolDir)
  const accounts = openAccounts({
    configDir,
    localDomains: config.localDomains,
    postmaster: config.postmaster,
    delimiter: config.recipientDelimiter,
  })
  const certs = await openCertificates({ configDir, hostname: config.hostname, certFile: config.tls.cert, keyFile: config.tls.key })
  const submission = await startSubmission({ config, logger, spool, accounts, certs, gateway: opts.gateway ?? null })
  const sessions: SmtpSession[] = []
  t.after(async () => {
    for (const s of sessions) await s.close()
    await submission.close()
    await fs.rm(dir, { recursive: true, force: true })
  })
  const port = (name: ListenerName): number => {
    const l = submission.listeners.find((x) => x.name === name)
    if (!l) throw new Error(`no ${name} listener`)
    return l.port
  }
  const session = async (name: ListenerName): Promise<SmtpSession> => {
    const s = await smtpSession(port(name))
    sessions.push(s)
    return s
  }
  return {
    config,
    spool,
    dir,
    port,
    session,
    async authenticated(user, password) {
      const s = await session('submission')
      await s.send('EHLO client.example')
      await s.startTls()
      await s.send('EHLO client.example')
      await s.send(`AUTH PLAIN ${plain(user, password)}`)
      return s
    },
  }
}

/** AUTH PLAIN's initial response (RFC 4616 §2): authzid NUL authcid NUL password, base64. */
export function plain(user: string, password: string, authzid = ''): string {
  return Buffer.from(`${authzid}\0${user}\0${password}`).toString('base64')
}

/**
 * One AUTH PLAIN over implicit TLS (the 465 listener) from `localAddress` (any 127.x.y.z works on
 * Linux loopback, so tests can play several clients). Resolves with the AUTH reply and how long
 * it took to come.
 */
export async function authOnce(
  port: number,
  user: string,
  password: string,
  localAddress = '127.0.0.1',
): Promise<{ reply: string; ms: number }> {
  const socket = tls.connect({ socket: net.connect({ host: '127.0.0.1', port, localAddress }), rejectUnauthorized: false })
  try {
    const replies = replyReader(socket)
    await once(socket, 'secureConnect')
    await replies.next()
    socket.write('EHLO client.example\r\n')
    await replies.next()
    const started = performance.now()
    socket.write(`AUTH PLAIN ${plain(user, password)}\r\n`)
    const reply = await replies.next()
    return { reply, ms: performance.now() - started }
  } finally {
    socket.destroy()
  }
}

/** Whole SMTP replies (RFC 5321 §4.2.1: the last line has a space after the code), one per next(). */
function replyReader(socket: tls.TLSSocket): { next(): Promise<string> } {
  let buffer = ''
  const replies: string[] = []
  const waiting: ((r: string) => void)[] = []
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1')
    for (let m = /^(?:\d{3}-.*\r\n)*\d{3}(?: .*)?\r\n/.exec(buffer); m; m = /^(?:\d{3}-.*\r\n)*\d{3}(?: .*)?\r\n/.exec(buffer)) {
      buffer = buffer.slice(m[0].length)
      const reply = m[0].trimEnd()
      const w = waiting.shift()
      if (w) w(reply)
      else replies.push(reply)
    }
  })
  return {
    next: () =>
      new Promise<string>((resolve, reject) => {
        const r = replies.shift()
        if (r !== undefined) return resolve(r)
        const timer = setTimeout(() => reject(new Error('no SMTP reply within 15 s')), 15_000)
        waiting.push((reply) => {
          clearTimeout(timer)
          resolve(reply)
        })
      }),
  }
}
