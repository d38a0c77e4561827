// Submission (RFC 6409) on the running appliance, driven by the real swaks: 587 with STARTTLS,
// 465 and the alternate port with implicit TLS, and what users may and may not do there.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { startAppliance, type Appliance } from './support/appliance.js'
import { swaks, lastReply, repliesTo, type SwaksResult } from './support/swaks.js'
import { readMbox, waitForCount } from './support/mbox.js'

let app: Appliance
const ports = { submission: 0, submissions: 0, alt: 0 }

const users = Object.fromEntries(
  ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'henry'].map((u) => [`${u}@ours.example`, `pw-${u}`]),
)

before(async () => {
  app = await startAppliance({
    services: ['smtp-ingress', 'delivery', 'submission'],
    users,
    aliases: [
      'sales@ours.example: alice@ours.example',
      'team@ours.example: alice@ours.example, bob@ours.example',
      'bobs@ours.example: bob@ours.example',
    ].join('\n'),
    env: {
      SUBMISSION_ALT_PORT: '0',
      SUBMISSION_AUTH_BAN_FAILURES: '3',
      SUBMISSION_AUTH_BAN_WINDOW: '1m',
      SUBMISSION_AUTH_BAN_TIME: '2s',
      SUBMISSION_AUTH_DELAY: '300ms',
      SUBMISSION_AUTH_DELAY_MAX: '1s',
      SUBMISSION_RATE_MESSAGES: '3',
      SUBMISSION_MAX_RECIPIENTS: '3',
    },
  })
  for (const name of ['submission', 'submissions', 'alt'] as const) ports[name] = app.port('submission', name)
})
after(() => app.stop())

const mbox = (user: string): string => path.join(app.mailDir, user)

/** swaks against one of the listeners: `tls` is --tls (STARTTLS) on 587, --tlsc elsewhere. */
function submit(listener: keyof typeof ports, args: string[]): Promise<SwaksResult> {
  const tls = listener === 'submission' ? ['--tls'] : ['--tlsc']
  return swaks(['--server', `127.0.0.1:${ports[listener]}`, '--helo', 'client.example', '--timeout', '10', ...tls, ...args])
}
const auth = (user: string, password = `pw-${user.split('@')[0]}`, method = 'PLAIN'): string[] => [
  '--auth',
  method,
  '--auth-user',
  user,
  '--auth-password',
  password,
]

test('swaks submits with STARTTLS on 587 and implicit TLS on 465 and on the alternate port; each message is delivered', async () => {
  const runs = [
    await submit('submission', [
      ...auth('henry@ours.example'),
      '--from',
      'henry@ours.example',
      '--to',
      'bob@ours.example',
      '--header',
      'Subject: via 587',
    ]),
    await submit('submissions', [
      ...auth('henry@ours.example', 'pw-henry', 'LOGIN'),
      '--from',
      'henry@ours.example',
      '--to',
      'bob@ours.example',
      '--header',
      'Subject: via 465',
    ]),
    await submit('alt', [
      ...auth('henry', 'pw-henry'),
      '--from',
      'henry@ours.example',
      '--to',
      'bob@ours.example',
      '--header',
      'Subject: via alt',
    ]),
  ]
  for (const r of runs) {
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(lastReply(r.stdout, 'AUTH') ?? '', /^235 /)
    assert.match(lastReply(r.stdout, '.') ?? '', /^250 2\.0\.0 Ok: queued as [0-9A-F]{21}$/)
  }
  const messages = await waitForCount(() => readMbox(mbox('bob')), 3)
  assert.deepEqual(messages.map((m) => /^Subject: (.*)$/m.exec(m)?.[1]).sort(), ['via 465', 'via 587', 'via alt'])
  for (const m of messages) assert.match(m, /^Received: by mx\.ours\.example \(Facteur, from an authenticated client\) with ESMTPSA id /m)
})

test('AUTH is not offered without TLS, so swaks --auth without --tls fails; MAIL without AUTH gets 530 5.7.0', async () => {
  const clear = await swaks([
    '--server',
    `127.0.0.1:${ports.submission}`,
    '--timeout',
    '10',
    ...auth('alice@ours.example'),
    '--from',
    'alice@ours.example',
    '--to',
    'bob@ours.example',
  ])
  assert.equal(clear.code, 28, clear.stdout + clear.stderr)
  assert.doesNotMatch(lastReply(clear.stdout, 'EHLO') ?? '', /AUTH/)
  assert.match(lastReply(clear.stdout, 'EHLO') ?? '', /STARTTLS/)
  assert.match(clear.stderr + clear.stdout, /did not advertise authentication/i)

  const anonymous = await submit('submission', ['--from', 'alice@ours.example', '--to', 'bob@ours.example'])
  assert.equal(anonymous.code, 23)
  assert.equal(lastReply(anonymous.stdout, 'MAIL'), '530 5.7.0 Authentication required')
  const anonymousTlsc = await submit('submissions', ['--from', 'alice@ours.example', '--to', 'bob@ours.example'])
  assert.equal(lastReply(anonymousTlsc.stdout, 'MAIL'), '530 5.7.0 Authentication required')
})

test('sending as someone else is refused with 553 5.7.1, in MAIL FROM and in the From: header', async () => {
  const envelope = await submit('submission', [...auth('carol@ours.example'), '--from', 'bob@ours.example', '--to', 'bob@ours.example'])
  assert.equal(lastReply(envelope.stdout, 'MAIL'), '553 5.7.1 Sender address rejected: not owned by the authenticated user')
  const header = await submit('submission', [
    ...auth('carol@ours.example'),
    '--from',
    'carol@ours.example',
    '--to',
    'bob@ours.example',
    '--header',
    'From: Bob <bob@ours.example>',
  ])
  assert.equal(lastReply(header.stdout, '.'), '553 5.7.1 From: header address rejected: not owned by the authenticated user')
  const notHers = await submit('submissions', [...auth('carol@ours.example'), '--from', 'bobs@ours.example', '--to', 'bob@ours.example'])
  assert.match(lastReply(notHers.stdout, 'MAIL') ?? '', /^553 5\.7\.1 /, "an alias of someone else's")
})

test('an alias that delivers to the user is accepted, as envelope sender and in From:', async () => {
  const r = await submit('submission', [
    ...auth('alice@ours.example'),
    '--from',
    'sales@ours.example',
    '--to',
    'carol@ours.example',
    '--header',
    'From: Sales <sales@ours.example>',
    '--header',
    'Subject: from sales',
  ])
  assert.equal(r.code, 0, r.stdout)
  const team = await submit('submission', [
    ...auth('alice@ours.example'),
    '--from',
    'team@ours.example',
    '--to',
    'carol@ours.example',
    '--header',
    'From: team@ours.example',
    '--header',
    'Subject: from team',
  ])
  assert.equal(team.code, 0, team.stdout)
  const messages = await waitForCount(() => readMbox(mbox('carol')), 2)
  assert.ok(messages.some((m) => /^From: Sales <sales@ours\.example>$/m.test(m) && /^Return-Path: <sales@ours\.example>$/m.test(m)))
})

test('Bcc: is gone and Message-ID: and Date: are added in the delivered message', async () => {
  const data = 'From: Dave <dave@ours.example>\\nTo: Erin <erin@ours.example>\\nBcc: frank@ours.example\\nSubject: blind\\n\\nhello\\n'
  const r = await submit('submission', [
    ...auth('dave@ours.example'),
    '--from',
    'dave@ours.example',
    '--to',
    'erin@ours.example,frank@ours.example',
    '--data',
    data,
  ])
  assert.equal(r.code, 0, r.stdout)
  for (const user of ['erin', 'frank']) {
    const [m] = await waitForCount(() => readMbox(mbox(user)), 1)
    assert.doesNotMatch(m, /^Bcc:/im, `${user}'s copy has no Bcc:`)
    if (user === 'erin') assert.doesNotMatch(m, /frank@/, "erin's copy does not name the blind recipient")
    assert.match(m, /^Message-ID: <[^@>\s]+@mx\.ours\.example>$/m)
    assert.match(m, /^Date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/m)
    assert.match(m, /^Subject: blind$/m)
  }
})

test('three failed AUTHs from one address ban it with 454 4.7.0; other addresses still get in; the ban lifts', async () => {
  const from = (ip: string, user: string, password: string) =>
    submit('submissions', ['-li', ip, ...auth(user, password), '--quit-after', 'AUTH'])
  for (const user of ['alice', 'bob', 'carol']) {
    const r = await from('127.0.0.2', `${user}@ours.example`, 'guess')
    assert.equal(lastReply(r.stdout, 'AUTH'), '535 5.7.8 Authentication credentials invalid')
  }
  const banned = await from('127.0.0.2', 'grace@ours.example', 'pw-grace')
  assert.equal(lastReply(banned.stdout, 'AUTH'), '454 4.7.0 Too many failed authentications from your address, try again later')
  assert.match(lastReply((await from('127.0.0.3', 'grace@ours.example', 'pw-grace')).stdout, 'AUTH') ?? '', /^235 /)
  await sleep(2100)
  assert.match(
    lastReply((await from('127.0.0.2', 'grace@ours.example', 'pw-grace')).stdout, 'AUTH') ?? '',
    /^235 /,
    'lifted after SUBMISSION_AUTH_BAN_TIME',
  )
})

test('failures against one account slow its AUTH replies down, and its owner still gets in from elsewhere', async () => {
  const timed = async (ip: string, password: string): Promise<{ reply?: string; ms: number }> => {
    const started = performance.now()
    const r = await submit('submissions', ['-li', ip, ...auth('frank@ours.example', password), '--quit-after', 'AUTH'])
    return { reply: lastReply(r.stdout, 'AUTH'), ms: performance.now() - started }
  }
  const baseline = await timed('127.0.0.4', 'pw-frank')
  assert.match(baseline.reply ?? '', /^235 /)
  assert.match((await timed('127.0.0.5', 'guess')).reply ?? '', /^535 /)
  assert.match((await timed('127.0.0.6', 'guess')).reply ?? '', /^535 /)
  // Two failures: the next reply for frank waits 600 ms, whoever asks.
  const owner = await timed('127.0.0.7', 'pw-frank')
  assert.match(owner.reply ?? '', /^235 /, 'not locked out')
  assert.ok(owner.ms - baseline.ms >= 450, `slowed down: ${Math.round(owner.ms)} ms against ${Math.round(baseline.ms)} ms`)
})

test('past 3 recipients RCPT gets 450 4.7.1, past 3 messages an hour MAIL gets 450 4.7.1', async () => {
  const first = await submit('submission', [
    ...auth('grace@ours.example'),
    '--from',
    'grace@ours.example',
    '--to',
    'alice@ours.example,bob@ours.example,carol@ours.example,dave@ours.example',
  ])
  assert.deepEqual(
    repliesTo(first.stdout, 'RCPT').map((r) => r.slice(0, 9)),
    ['250 2.1.5', '250 2.1.5', '250 2.1.5', '450 4.7.1'],
  )
  assert.equal(repliesTo(first.stdout, 'RCPT')[3], '450 4.7.1 Too many recipients for one message, send the rest in another')
  assert.match(lastReply(first.stdout, '.') ?? '', /^250 /, 'the message goes to the accepted three')
  for (let i = 2; i <= 3; i++)
    assert.equal(
      (await submit('submissions', [...auth('grace@ours.example'), '--from', 'grace@ours.example', '--to', 'alice@ours.example'])).code,
      0,
      `message ${i}`,
    )
  const fourth = await submit('submission', [...auth('grace@ours.example'), '--from', 'grace@ours.example', '--to', 'alice@ours.example'])
  assert.equal(lastReply(fourth.stdout, 'MAIL'), '450 4.7.1 Message rate limit reached, try again later')
})

test('health is degraded (HTTP 200) with the self-signed certificate', async () => {
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: app.port('submission', 'health'), path: '/healthz' }, (res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      .on('error', reject)
  })
  assert.equal(status, 200, body)
  const report = JSON.parse(body) as { status: string; checks: Record<string, { status: string; detail?: string }> }
  assert.equal(report.status, 'degraded', body)
  assert.deepEqual(report.checks.tls, { status: 'degraded', detail: 'self-signed certificate' }, body)
})
