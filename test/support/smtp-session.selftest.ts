// Self-test for smtp-session.ts: replies split across reads, joined in one read, and STARTTLS.
import assert from 'node:assert/strict'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { test } from 'node:test'
import { startScriptedMx } from './scripted-mx.js'
import { dataBytes, smtpSession } from './smtp-session.js'

/** A server that writes `script` for each line it receives, one byte per write. */
async function dribbler(greeting: string, script: Record<string, string>) {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    const dribble = async (text: string) => {
      for (const byte of Buffer.from(text)) {
        if (socket.destroyed) return
        socket.write(Buffer.of(byte))
        await new Promise((resolve) => setImmediate(resolve))
      }
    }
    let chain = dribble(greeting)
    let buffer = ''
    socket.on('data', (chunk) => {
      buffer += chunk.toString()
      let eol: number
      while ((eol = buffer.indexOf('\r\n')) !== -1) {
        const line = buffer.slice(0, eol)
        buffer = buffer.slice(eol + 2)
        chain = chain.then(() => dribble(script[line] ?? '500 5.5.1 What?\r\n'))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

test('replies arriving a byte at a time and several per packet are read whole and in order', async (t) => {
  const server = await dribbler('220-first line\r\n220 mx.test ready\r\n', {
    'EHLO x': '250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n',
    NOOP: '250 2.0.0 Ok\r\n',
    'NOOP twice': '250 one\r\n250 two\r\n',
  })
  t.after(() => server.close())
  const s = await smtpSession(server.port)
  t.after(() => s.close())
  assert.equal(s.greeting, '220-first line\n220 mx.test ready')
  assert.equal(await s.send('EHLO x'), '250-mx.test\n250-PIPELINING\n250 8BITMIME')
  s.write('NOOP\r\nNOOP\r\n')
  assert.equal(await s.read(), '250 2.0.0 Ok')
  assert.equal(await s.read(), '250 2.0.0 Ok')
  assert.equal(await s.send('NOOP twice'), '250 one')
  assert.equal(await s.read(), '250 two')
  assert.equal(await s.send('BOGUS'), '500 5.5.1 What?')
})

test('startTls upgrades the connection and the session goes on inside TLS', async (t) => {
  const mx = await startScriptedMx({ tls: true, requireTls: true })
  t.after(() => mx.close())
  const s = await smtpSession(mx.port)
  t.after(() => s.close())
  assert.match(await s.send('EHLO client.test'), /^250[ -]STARTTLS$/m)
  assert.match(await s.startTls(), /^220 /)
  assert.match(await s.send('EHLO client.test'), /^250-mx\.remote\.example/)
  assert.equal(await s.send('MAIL FROM:<a@ours.example>'), '250 Accepted')
  assert.equal(await s.send('RCPT TO:<b@remote.example>'), '250 Accepted')
  assert.match(await s.send('DATA'), /^354 /)
  assert.equal(await s.sendRaw(dataBytes('Subject: x\n\nhi\n')), '250 Ok: queued')
  assert.equal(mx.messages[0].tls, true)
  assert.equal(mx.messages[0].data.toString(), 'Subject: x\r\n\r\nhi\r\n')
})

test('dataBytes ends lines with CRLF, dot-stuffs and terminates', () => {
  assert.equal(dataBytes('a\n.b\r\n..c').toString(), 'a\r\n..b\r\n...c\r\n.\r\n')
  assert.equal(dataBytes('').toString(), '.\r\n')
})
