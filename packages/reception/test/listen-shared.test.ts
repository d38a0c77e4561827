// listenShared: one smtp-server on one port through several sockets where the runtime has
// SO_REUSEPORT (Node 22.12 and later: the image), one socket before; either way every connection
// reaches the server, and a second server on the same port is refused (EADDRINUSE), not let in.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import net from 'node:net'
import { promisify } from 'node:util'
import { SMTPServer } from 'smtp-server'
import { listenShared, REUSE_PORT } from '@facteur/reception'
import { smtpSession } from '../../../test/support/smtp-session.js'

const run = promisify(execFile)
/** A bare smtp-server; its errors (a refused listen among them) are the caller's, as the ingress logs them. */
function smtp(): SMTPServer {
  const server = new SMTPServer({
    name: 'mx.test.example',
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    logger: false,
  })
  server.on('error', () => undefined)
  return server
}

test(`sockets on the port: ${REUSE_PORT ? 4 : 1} (Node ${process.versions.node}); 40 clients at once are all greeted`, async (t) => {
  const listening = await listenShared(smtp(), 0, '127.0.0.1')
  t.after(() => listening.close())
  assert.equal(listening.sockets, REUSE_PORT ? 4 : 1)
  const ss = await run('ss', ['-ltnH', `sport = :${listening.port}`])
  assert.equal(ss.stdout.trim().split('\n').length, listening.sockets, ss.stdout)
  const greetings = await Promise.all(
    Array.from({ length: 40 }, async () => {
      const s = await smtpSession(listening.port)
      try {
        return s.greeting
      } finally {
        await s.close()
      }
    }),
  )
  for (const g of greetings) assert.match(g, /^220 mx\.test\.example /)
})

test('a second server on the same port gets EADDRINUSE, however it listens', async (t) => {
  const listening = await listenShared(smtp(), 0, '127.0.0.1')
  t.after(() => listening.close())
  await assert.rejects(listenShared(smtp(), listening.port, '127.0.0.1'), { code: 'EADDRINUSE' })
  const plain = net.createServer()
  await assert.rejects(
    new Promise<void>((resolve, reject) => {
      plain.once('error', reject)
      plain.listen({ port: listening.port, host: '127.0.0.1' }, () => resolve())
    }),
    { code: 'EADDRINUSE' },
  )
  const s = await smtpSession(listening.port)
  assert.match(s.greeting, /^220 /, 'the first server still serves')
  await s.close()
})
