// Authentication under attack, on every submission listener (587 with STARTTLS, 465, the
// alternate port) of the running appliance, its users added by mailctl (bcrypt hashes, as in
// production): a brute force over many connections at once gets no more guesses than the ban
// allows; a name nobody has is answered as slowly as a user's wrong password; AUTH is refused
// before TLS and on :25; an authenticated user cannot send as somebody else, in MAIL FROM or in
// From:, whatever the spelling.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { startAppliance, type Appliance } from '../support/appliance.js'
import { run } from '../support/process.js'
import { readMbox, waitForCount } from '../support/mbox.js'
import { Wire, type Mode } from './wire.js'
import { record, sampleMemory, totalRestarts, waitForListeners } from './figures.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const BAN_FAILURES = 5
const BAN_TIME_MS = 4000
const PASSWORDS: Record<string, string> = { alice: 'alice-long-secret', bob: 'bob-long-secret', carol: 'carol-long-secret' }
const BANNED = '454 4.7.0 Too many failed authentications from your address, try again later'

let app: Appliance
let listeners: { name: string; port: number; mode: Mode }[] = []

before(async () => {
  app = await startAppliance({
    services: ['smtp-ingress', 'delivery', 'submission'],
    aliases: 'sales@ours.example: alice@ours.example\nbobs@ours.example: bob@ours.example\n',
    env: {
      SUBMISSION_ALT_PORT: '0',
      SUBMISSION_AUTH_BAN_FAILURES: String(BAN_FAILURES),
      SUBMISSION_AUTH_BAN_WINDOW: '10m',
      SUBMISSION_AUTH_BAN_TIME: `${BAN_TIME_MS / 1000}s`,
      SUBMISSION_AUTH_DELAY: '100ms',
      SUBMISSION_AUTH_DELAY_MAX: '400ms',
      SUBMISSION_RATE_MESSAGES: '1000',
    },
  })
  await waitForListeners(app, 'submission', ['submission', 'submissions', 'alt'])
  listeners = [
    { name: '587', port: app.port('submission', 'submission'), mode: 'starttls' },
    { name: '465', port: app.port('submission', 'submissions'), mode: 'implicit' },
    { name: 'alt', port: app.port('submission', 'alt'), mode: 'implicit' },
  ]
  // The administrator's tool: each password stored as a {BLF-CRYPT} hash.
  for (const [user, password] of Object.entries(PASSWORDS)) {
    const r = await run('npx', ['mailctl', 'user', 'add', `${user}@ours.example`, '--password-stdin'], {
      cwd: ROOT,
      env: app.env,
      input: `${password}\n`,
      timeoutMs: 30_000,
    })
    assert.equal(r.code, 0, r.stderr)
  }
})
after(() => app.stop())

const plain = (user: string, password: string): string => Buffer.from(`\0${user}\0${password}`).toString('base64')

/** One AUTH PLAIN (after STARTTLS on 587) from localAddress: its reply, or why there is none. */
async function authOnce(l: { port: number; mode: Mode }, user: string, password: string, localAddress: string): Promise<string> {
  let w: Wire
  try {
    w = await Wire.open(l.port, { mode: l.mode, localAddress, timeoutMs: 20_000 })
  } catch (e) {
    return `closed: ${(e as Error).message}`
  }
  try {
    await w.trySend('EHLO client.example') // again after STARTTLS (RFC 3207 §4.2)
    return await w.trySend(`AUTH PLAIN ${plain(user, password)}`)
  } finally {
    w.close()
  }
}

/** A whole transaction as alice; the reply to MAIL, to RCPT and to the end of DATA (or '-'). */
async function sendAs(
  l: { port: number; mode: Mode },
  mailFrom: string,
  header: string,
): Promise<{ mail: string; rcpt: string; data: string }> {
  const w = await Wire.open(l.port, { mode: l.mode, timeoutMs: 20_000 })
  try {
    await w.send('EHLO client.example')
    const auth = await w.send(`AUTH PLAIN ${plain('alice@ours.example', PASSWORDS.alice)}`)
    assert.match(auth, /^235 /, auth)
    const mail = await w.trySend(`MAIL FROM:${mailFrom}`)
    if (!mail.startsWith('250')) return { mail, rcpt: '-', data: '-' }
    const rcpt = await w.trySend('RCPT TO:<carol@ours.example>')
    if (!rcpt.startsWith('250')) return { mail, rcpt, data: '-' }
    const go = await w.trySend('DATA')
    if (!go.startsWith('354')) return { mail, rcpt, data: go }
    const data = await w.trySend(`${header}\r\nSubject: spoof probe\r\nMessage-ID: <${Math.random()}@client.example>\r\n\r\nprobe\r\n.`)
    return { mail, rcpt, data }
  } finally {
    w.close()
  }
}

/** MAIL FROM spellings of addresses alice does not own (every other field of the message is hers). */
const ENVELOPE_SPOOFS = [
  '<bob@ours.example>',
  '<BOB@OURS.EXAMPLE>',
  '<Bob@Ours.Example>',
  '<"bob"@ours.example>',
  '<bob@ours.example.>',
  '<@ours.example:bob@ours.example>',
  '<bob+alice@ours.example>',
  '<bobs@ours.example>',
  '<postmaster@ours.example>',
  '<nobody@ours.example>',
  '<alice@remote.example>',
  '<alice@ours.example.remote.example>',
  '<"alice@ours.example"@remote.example>',
  '<alice%remote.example@ours.example>',
  'bob@ours.example',
]

/** From: fields (with MAIL FROM:<alice@ours.example>) that show or name somebody else. */
const HEADER_SPOOFS = [
  'From: bob@ours.example',
  'From: <bob@ours.example>',
  'FROM: bob@ours.example',
  'from: Bob <bob@ours.example>',
  'From : bob@ours.example',
  'From:bob@ours.example',
  'From:\r\n <bob@ours.example>',
  'From: Alice <bob@ours.example>',
  'From: "alice@ours.example" <bob@ours.example>',
  'From: =?UTF-8?B?QWxpY2U=?= <bob@ours.example>',
  'From: bob@ours.example (alice@ours.example)',
  'From: alice@ours.example, bob@ours.example',
  'From: bob@ours.example, alice@ours.example',
  'From: alice@ours.example\r\nFrom: bob@ours.example',
  'From: bob@ours.example\r\nFrom: alice@ours.example',
  'From: friends: bob@ours.example;',
  'From: <bob@remote.example>',
  'From: alice@remote.example',
  'From: <"bob"@ours.example>',
  'From: bob@ours.example.',
  'From: Postmaster <postmaster@ours.example>',
  'From: ',
  'From: <>',
  'From: Alice',
  // a field a reader splitting on bare LF or CR would see, hidden in another line
  'Subject: hello\nFrom: bob@ours.example',
  'Subject: hello\rFrom: bob@ours.example',
]

/** What alice may use: her address, a sub-address of it, an alias of hers, and no From: at all. */
const OWN = [
  { mailFrom: '<alice@ours.example>', header: 'From: Alice <alice@ours.example>' },
  { mailFrom: '<ALICE@ours.example>', header: 'From: alice+lists@ours.example' },
  { mailFrom: '<sales@ours.example>', header: 'From: Sales <sales@ours.example>' },
  { mailFrom: '<alice@ours.example>', header: 'X-No-From: added by submission' },
]

/** Replies counted by their first line's code and enhanced code ("535 5.7.8"). */
function tally(replies: string[]): Record<string, number> {
  const t: Record<string, number> = {}
  for (const r of replies) {
    const k = r.startsWith('closed') ? 'closed' : r.slice(0, 9)
    t[k] = (t[k] ?? 0) + 1
  }
  return t
}

test(
  'a brute force over 45 connections at once gets BAN_FAILURES guesses; then 454 4.7.0 even for the right password, until the ban ends',
  { timeout: 120_000 },
  async () => {
    const started = Date.now()
    const mem = sampleMemory(app)
    const attacker = '127.0.0.2'
    // Three users and three names nobody has; each connection guesses on until it is refused.
    const names = ['alice', 'root', 'bob', 'admin', 'carol', 'info']
    const perConnection = await Promise.all(
      listeners.flatMap((l) =>
        Array.from({ length: 15 }, async (_, i) => {
          let w: Wire
          try {
            w = await Wire.open(l.port, { mode: l.mode, localAddress: attacker, timeoutMs: 60_000 })
          } catch (e) {
            return [`closed: ${(e as Error).message}`]
          }
          try {
            await w.trySend('EHLO client.example')
            const replies: string[] = []
            for (let k = 0; k < 3; k++) {
              const r = await w.trySend(`AUTH PLAIN ${plain(`${names[(i + k) % names.length]}@ours.example`, `guess-${l.name}-${i}-${k}`)}`)
              replies.push(r)
              if (!r.startsWith('535 ')) break
            }
            return replies
          } finally {
            w.close()
          }
        }),
      ),
    )
    const attempts = perConnection.flat()
    const counts = tally(attempts)
    const checked = counts['535 5.7.8'] ?? 0
    const refused = attempts.filter((r) => r === BANNED).length
    // The ban holds on every listener, the right password included (no oracle); others get in.
    const rightFromAttacker = await Promise.all(listeners.map((l) => authOnce(l, 'alice@ours.example', PASSWORDS.alice, attacker)))
    const rightFromElsewhere = await Promise.all(listeners.map((l) => authOnce(l, 'bob@ours.example', PASSWORDS.bob, '127.0.0.3')))
    await sleep(BAN_TIME_MS + 500)
    const afterBan = await authOnce(listeners[0], 'alice@ours.example', PASSWORDS.alice, attacker)
    const restarts = await totalRestarts(app)
    await mem.stop()
    const codes = (rs: string[]): string => rs.map((r) => r.slice(0, 3)).join('/')
    record({
      test: 'authentication: brute force (auth.test.ts)',
      load: `45 connections at once from one address (SMTP_MAX_CLIENTS_PER_IP is 50), 15 on each of 587 (STARTTLS), 465 and the alternate port; up to 3 AUTH PLAIN guesses each against 3 users and 3 names nobody has (passwords stored by mailctl, bcrypt); SUBMISSION_AUTH_BAN_FAILURES=${BAN_FAILURES}`,
      injected: 'wrong passwords in parallel; then the right password from the banned address, and from another',
      sent: attempts.length,
      accepted: attempts.filter((r) => r.startsWith('235')).length,
      restarts,
      peakRssMiB: mem.max(),
      result: `${checked} of ${attempts.length} guesses had their password checked (535 5.7.8), ${refused} refused unchecked (454 4.7.0), 0 accepted; right password from the banned address during the ban: ${codes(rightFromAttacker)} (587/465/alt), from another address: ${codes(rightFromElsewhere)}; after the ban (${BAN_TIME_MS / 1000} s): ${afterBan.slice(0, 3)}`,
      durationS: Math.round((Date.now() - started) / 1000),
    })
    assert.equal(checked, BAN_FAILURES, `guesses checked: ${JSON.stringify(counts)}`)
    assert.equal(refused, attempts.length - checked, JSON.stringify(counts))
    assert.deepEqual(rightFromAttacker, [BANNED, BANNED, BANNED])
    for (const r of rightFromElsewhere) assert.match(r, /^235 /)
    assert.match(afterBan, /^235 /, 'the ban ends after SUBMISSION_AUTH_BAN_TIME')
    assert.equal(restarts, 0)
  },
)

test(
  'no AUTH before TLS on 587 nor on :25; a name nobody has is answered as slowly as a wrong password',
  { timeout: 120_000 },
  async () => {
    const started = Date.now()
    const creds = `AUTH PLAIN ${plain('alice@ours.example', PASSWORDS.alice)}`
    // 587 before STARTTLS (RFC 3207 §4.2, RFC 4954 §4): AUTH neither offered nor taken, and no mail.
    const clear = await Wire.open(listeners[0].port, { mode: 'plain' })
    const clearEhlo = await clear.send('EHLO client.example')
    const clearAuth = [await clear.trySend(creds), await clear.trySend('AUTH LOGIN')]
    const clearMail = await clear.trySend('MAIL FROM:<alice@ours.example>')
    clear.close()
    // :25 is for mail to our domains: no AUTH at all, so a user's password relays nothing there.
    const mx: { mode: Mode; ehlo: string; auth: string; rcpt: string }[] = []
    for (const mode of ['plain', 'starttls'] as const) {
      const w = await Wire.open(app.port('smtp-ingress', 'smtp'), { mode })
      const ehlo = await w.send('EHLO client.example')
      const auth = await w.trySend(creds)
      await w.trySend('MAIL FROM:<alice@ours.example>')
      const rcpt = await w.trySend('RCPT TO:<someone@remote.example>')
      w.close()
      mx.push({ mode, ehlo, auth, rcpt })
    }
    // Timing: a user's wrong password against a name nobody has, each from its own address (no ban)
    // and each user's slowdown ended by a right password before the next guess.
    const timed = async (user: string, password: string, ip: string): Promise<{ reply: string; ms: number }> => {
      const w = await Wire.open(listeners[1].port, { mode: 'implicit', localAddress: ip })
      try {
        await w.send('EHLO client.example')
        const t0 = performance.now()
        const reply = await w.trySend(`AUTH PLAIN ${plain(user, password)}`)
        return { reply, ms: performance.now() - t0 }
      } finally {
        w.close()
      }
    }
    const known: number[] = []
    const unknown: number[] = []
    for (let i = 0; i < 7; i++) {
      const k = await timed('carol@ours.example', `guess-${i}`, `127.0.3.${i + 1}`)
      assert.match(k.reply, /^535 /)
      known.push(k.ms)
      assert.match((await timed('carol@ours.example', PASSWORDS.carol, `127.0.4.${i + 1}`)).reply, /^235 /)
      const u = await timed(`nobody${i}@ours.example`, `guess-${i}`, `127.0.5.${i + 1}`)
      assert.match(u.reply, /^535 /)
      unknown.push(u.ms)
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]
    const restarts = await totalRestarts(app)
    record({
      test: 'authentication: before TLS, on :25, unknown names (auth.test.ts)',
      load: "587 without STARTTLS; :25 plain and with STARTTLS; 7 AUTH PLAIN with a user's wrong password and 7 with a name nobody has, on 465",
      injected: "a user's right password in the clear and on :25, then MAIL and a remote RCPT; guesses timed from the client",
      restarts,
      result: `587 clear: AUTH not in EHLO, AUTH PLAIN ${clearAuth[0].slice(0, 9)}, AUTH LOGIN ${clearAuth[1].slice(0, 9)}, MAIL ${clearMail.slice(0, 9)}; :25 ${mx.map((m) => `${m.mode}: AUTH ${m.ehlo.includes('AUTH') ? 'offered' : 'not offered'}, AUTH PLAIN ${m.auth.slice(0, 9)}, remote RCPT ${m.rcpt.slice(0, 9)}`).join('; ')}; 535 after ${median(known).toFixed(0)} ms (p50) for a user's wrong password, ${median(unknown).toFixed(0)} ms for a name nobody has`,
      durationS: Math.round((Date.now() - started) / 1000),
    })
    assert.doesNotMatch(clearEhlo, /AUTH/)
    for (const r of clearAuth) assert.match(r, /^5\d\d 5\.\d+\.\d+ /, r)
    assert.equal(clearMail, '530 5.7.0 Must issue a STARTTLS command first')
    for (const m of mx) {
      assert.doesNotMatch(m.ehlo, /AUTH/, `:25 ${m.mode}`)
      assert.match(m.auth, /^5\d\d 5\.\d+\.\d+ /, `:25 ${m.mode}: ${m.auth}`)
      assert.equal(m.rcpt, '554 5.7.1 Relay access denied', `:25 ${m.mode}`)
    }
    // bcrypt's comparison takes tens of ms here; without it for unknown names they answered in 1-2.
    assert.ok(median(unknown) > median(known) / 3, `unknown ${median(unknown)} ms, user ${median(known)} ms`)
    assert.equal(restarts, 0)
  },
)

test(
  'an authenticated user cannot send as anybody else, in MAIL FROM or in From:, on any submission listener',
  { timeout: 300_000 },
  async () => {
    const started = Date.now()
    const refused: string[] = []
    const taken: string[] = []
    for (const l of listeners) {
      for (const m of ENVELOPE_SPOOFS) {
        const r = await sendAs(l, m, 'From: alice@ours.example')
        if (r.data.startsWith('250')) taken.push(`${l.name} MAIL FROM:${m}`)
        else refused.push(r.mail.startsWith('250') ? r.data : r.mail)
      }
      for (const h of HEADER_SPOOFS) {
        const r = await sendAs(l, '<alice@ours.example>', h)
        if (r.data.startsWith('250')) taken.push(`${l.name} ${JSON.stringify(h)}`)
        else refused.push(r.data)
      }
    }
    const own = []
    for (const l of listeners) for (const o of OWN) own.push(await sendAs(l, o.mailFrom, o.header))
    const delivered = await waitForCount(() => readMbox(path.join(app.mailDir, 'carol')), own.length, 30_000)
    const froms = delivered.map((m) => /^From: (.*)$/m.exec(m)?.[1] ?? '(none)')
    const restarts = await totalRestarts(app)
    const codes = tally(refused)
    record({
      test: 'authentication: sender spoofing (auth.test.ts)',
      load: `${ENVELOPE_SPOOFS.length} MAIL FROM spellings and ${HEADER_SPOOFS.length} From: fields × 3 listeners (587, 465, alt) = ${(ENVELOPE_SPOOFS.length + HEADER_SPOOFS.length) * 3} transactions as alice; ${own.length} of her own`,
      injected:
        "other users' addresses, case and quoting variants, aliases and sub-addresses of others, source routes, trailing dots, several or repeated From:, groups, encoded words, empty From:, a From: after a bare LF or CR",
      sent: (ENVELOPE_SPOOFS.length + HEADER_SPOOFS.length + OWN.length) * 3,
      accepted: taken.length + own.filter((r) => r.data.startsWith('250')).length,
      delivered: delivered.length,
      restarts,
      result: `spoofs accepted: ${taken.length}; refused with ${Object.entries(codes)
        .map(([k, n]) => `${k} ×${n}`)
        .join(
          ', ',
        )}; her own ${own.filter((r) => r.data.startsWith('250')).length} of ${own.length} accepted and delivered, their From: ${[...new Set(froms)].join(' | ')}`,
      durationS: Math.round((Date.now() - started) / 1000),
    })
    assert.deepEqual(taken, [])
    for (const r of refused) assert.match(r, /^5\d\d 5\.\d+\.\d+ /, r)
    for (const r of own) assert.match(r.data, /^250 /, JSON.stringify(r))
    assert.equal(delivered.length, own.length)
    for (const f of froms) assert.match(f, /^(Alice |Sales )?<?(alice|alice\+lists|sales)@ours\.example>?$/i, f)
    assert.equal(restarts, 0)
  },
)
