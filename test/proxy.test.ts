// The PROXY protocol in front of the MX (PROXY_TRUSTED), on the running appliance: swaks sends
// version 2 (binary, as HAProxy's send-proxy-v2 and Traefik do) and version 1 (text) headers; the
// address they carry is the client's in the log and the Received: field. A broken header closes
// that connection only; a seeded fuzz loop of mutated headers never crashes the MX (a header
// announcing more bytes than came waits for them, as it should: the client gives up after 1 s).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import path from 'node:path'
import { startAppliance, type Appliance } from './support/appliance.js'
import { swaks, lastReply } from './support/swaks.js'
import { readMbox, waitForCount } from './support/mbox.js'
import { prng } from './support/prng.js'

let app: Appliance
let port: number

before(async () => {
  app = await startAppliance({ users: { 'bob@ours.example': 'pw-bob' }, env: { PROXY_TRUSTED: '127.0.0.1' } })
  port = app.port('smtp-ingress', 'smtp')
})
after(() => app?.stop())

const proxied = (version: '1' | '2', family: 'TCP4' | 'TCP6', source: string, subject: string) =>
  swaks([
    '--server',
    `127.0.0.1:${port}`,
    '--proxy-version',
    version,
    '--proxy-family',
    // Version 2 names the address family alone (its transport is STREAM by default).
    version === '1' ? family : family === 'TCP4' ? 'AF_INET' : 'AF_INET6',
    '--proxy-source',
    source,
    '--proxy-source-port',
    '40000',
    '--proxy-dest',
    family === 'TCP4' ? '198.51.100.1' : '2001:db8::25',
    '--proxy-dest-port',
    '25',
    '--from',
    'a@remote.example',
    '--to',
    'bob@ours.example',
    '--header',
    `Subject: ${subject}`,
    '--timeout',
    '15',
  ])

const delivered = async (subject: string): Promise<string> => {
  const [m] = await waitForCount(
    async () => (await readMbox(path.join(app.mailDir, 'bob'))).filter((x) => x.includes(`Subject: ${subject}\n`)),
    1,
    20_000,
  )
  return m
}

test('a version 2 header (IPv4 and IPv6 sources) names the client, in the log and in Received:', async () => {
  for (const [family, source, shown] of [
    ['TCP4', '192.0.2.10', '192.0.2.10'],
    ['TCP6', '2001:db8:0:0:0:0:0:7', 'IPv6:2001:db8::7'],
  ] as const) {
    const r = await proxied('2', family, source, `v2 ${family}`)
    assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
    assert.match(await delivered(`v2 ${family}`), new RegExp(`^Received: from \\S+ \\(\\[${shown.replace(/\./g, '\\.')}\\]\\)$`, 'm'))
  }
  assert.match(app.output(), / queued .*remoteIp=192\.0\.2\.10 /)
  assert.match(app.output(), / queued .*remoteIp=2001:db8::7 /)
})

test('a version 1 header still works beside it', async () => {
  const r = await proxied('1', 'TCP4', '192.0.2.11', 'v1')
  assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
  assert.match(await delivered('v1'), /^Received: from \S+ \(\[192\.0\.2\.11\]\)$/m)
})

test('a broken version 2 header closes that connection with nothing said; the MX goes on', async () => {
  const reply = await new Promise<string>((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let got = ''
    socket.on('data', (d) => (got += d.toString()))
    socket.on('close', () => resolve(got))
    socket.on('error', () => undefined)
    // The signature, then version 3: not a header this protocol has.
    socket.write(Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540a', 'hex'), Buffer.from([0x31, 0x11, 0x00, 0x0c]), Buffer.alloc(12)]))
  })
  assert.doesNotMatch(reply, /^220/)
  const r = await proxied('2', 'TCP4', '192.0.2.12', 'after the broken one')
  assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
})

/**
 * What the MX says on one connection that sends `bytes` then EHLO and QUIT: '' when it closes
 * without a word, null when it is still waiting after a second (a header announcing more bytes
 * than came: it waits for them until SMTP_TIMEOUT).
 */
const exchange = (bytes: Buffer): Promise<string | null> =>
  new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let got = ''
    const done = (): void => {
      socket.destroy()
      resolve(got || null)
    }
    const timer = setTimeout(done, 1_000)
    socket.on('data', (d) => {
      got += d.toString('latin1')
      if (/^221 /m.test(got)) {
        clearTimeout(timer)
        done()
      }
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(got)
    })
    socket.on('error', () => undefined)
    socket.write(Buffer.concat([bytes, Buffer.from('EHLO fuzz.example\r\nQUIT\r\n')]))
  })

test('300 mutated version 2 headers (seeded): each connection is closed or answered with SMTP replies; the MX never crashes', async () => {
  const seed = 20261130
  const rand = prng(seed)
  const valid = Buffer.concat([
    Buffer.from('0d0a0d0a000d0a515549540a', 'hex'),
    Buffer.from([0x21, 0x11, 0x00, 0x0c, 192, 0, 2, 13, 198, 51, 100, 1, 0x9c, 0x40, 0, 25]),
  ])
  const outcomes = { closed: 0, answered: 0, waiting: 0 }
  for (let i = 0; i < 300; i++) {
    const bytes = [...valid]
    for (let n = 1 + Math.floor(rand() * 3); n > 0; n--) {
      // Past the signature (a broken signature is a version 1 header, smtp-server's): version,
      // family, length, addresses, or bytes appended.
      const at = 12 + Math.floor(rand() * (bytes.length - 11))
      if (rand() < 0.8) bytes[at] = Math.floor(rand() * 256)
      else bytes.push(...Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)))
    }
    const reply = await exchange(Buffer.from(bytes))
    if (reply === null) outcomes.waiting++
    else if (reply === '') outcomes.closed++
    else {
      outcomes.answered++
      for (const line of reply.split('\r\n').filter(Boolean))
        assert.match(line, /^[2-5]\d\d[ -]/, `seed ${seed}, case ${i}: ${JSON.stringify(reply)}`)
    }
  }
  console.log(`fuzz outcomes: ${JSON.stringify(outcomes)}`)
  assert.ok(outcomes.closed > 0 && outcomes.answered > 0, JSON.stringify(outcomes))
  assert.doesNotMatch(app.output(), /service exited/)
  const r = await proxied('2', 'TCP4', '192.0.2.14', 'after the fuzz')
  assert.match(lastReply(r, '.') ?? '', /^250 /, r.stdout)
})
