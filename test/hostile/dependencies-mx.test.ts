// Dependencies failing: the remote MX (Postfix's smtp-sink, reached through a TRANSPORT_MAP route)
// hangs (SIGSTOP: connections accepted by the kernel, never greeted, transactions in flight
// frozen), then stops (connection refused), then a server on its port answers garbage (a garbled
// greeting, binary junk to MAIL, a reply code of 999 or a line without a code after the message
// data, a greeting that trickles in forever), then comes back, while a TRUSTED_NETWORKS client
// keeps sending outbound mail. Messages are deferred, never bounced nor lost; nothing reaches the
// MX twice beyond the "250 lost" window (a message the MX stored whose 250 we never read); the
// queue drains to the MX on the runner's own retries once it is back.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { startAppliance } from '../support/appliance.js'
import { startSmtpSink } from '../support/smtp-sink.js'
import { binaryThenSilence, nonsense, sayAndClose, smtpGarbled, startGarbageServer, trickle } from '../support/garbage.js'
import { readMbox } from '../support/mbox.js'
import { checkDelivered, deliveredCopies, runLoad } from './load.js'
import { Phases, eventually, sleep } from './phases.js'
import { record, sampleMemory, spoolEnvelopes, spoolSettled, totalRestarts } from './figures.js'

const HUNG_S = 10
const STOPPED_S = 6
const GARBAGE_S = 10
const CONCURRENCY = 4
type Phase = 'before' | 'hung' | 'stopped' | 'garbage' | 'back'

test(
  'the remote MX hung, refusing connections and answering garbage mid-load: outbound mail is deferred, never bounced or lost, not duplicated beyond the lost-250 window, and drains once it is back',
  { timeout: 240_000 },
  async (t) => {
    const started = Date.now()
    const sink = await startSmtpSink()
    t.after(() => sink.close())
    const app = await startAppliance({
      timeoutMs: 120_000,
      users: { 'sender@ours.example': 'pw' },
      env: {
        TRANSPORT_MAP: `far.example=[127.0.0.1]:${sink.port}`,
        TRUSTED_NETWORKS: '127.0.0.2',
        OUTBOUND_CONCURRENCY_PER_DOMAIN: String(CONCURRENCY),
        OUTBOUND_CONNECT_TIMEOUT: '3s',
        OUTBOUND_GREETING_TIMEOUT: '3s',
        OUTBOUND_COMMAND_TIMEOUT: '5s',
        QUEUE_RETRY_MIN: '1s',
        QUEUE_RETRY_MAX: '2s',
        DELAY_WARNING: 'off',
      },
    })
    t.after(() => app.stop())
    const mem = sampleMemory(app)

    const phases = new Phases<Phase>('before')
    const stop = new AbortController()
    const loading = runLoad({
      port: app.port('smtp-ingress', 'smtp'),
      count: 100_000,
      concurrency: 2,
      recipients: ['someone@far.example'],
      from: 'sender@ours.example',
      localAddress: '127.0.0.2',
      budgetMs: 200_000,
      signal: stop.signal,
      onReply: phases.listener(),
    })
    // A transaction the sink never finished (frozen by the SIGSTOP, then stopped, before the ".")
    // leaves a dump with the envelope only, or with the 4 KiB blocks of content it had flushed, cut
    // mid-line: the MX never accepted it (our client timed out and retried), so it is counted apart,
    // not as a truncated message.
    const atMx = async () => {
      const dumps = await sink.received()
      const messages = dumps.filter((m) => m.complete).map((m) => m.message)
      return { ...deliveredCopies(messages), messages, unfinished: dumps.length - messages.length }
    }
    const delivering = async () => (await atMx()).byId.size >= 5
    assert.ok(await eventually(delivering, 90_000), `nothing reached the MX before the outage: ${phases.summary()}`)

    const atMxBy: Partial<Record<Phase, number>> = { before: (await atMx()).byId.size }
    phases.enter('hung')
    await sink.pause()
    await sleep(HUNG_S * 1000)
    // SIGCONT before SIGTERM: the frozen sessions end with the sink, as a crashed MX's would.
    phases.enter('stopped')
    await sink.stop()
    atMxBy.hung = (await atMx()).byId.size
    await sleep(STOPPED_S * 1000)
    const garbage = await startGarbageServer(sink.port, [
      smtpGarbled('greeting', () => nonsense(80)),
      smtpGarbled('MAIL', () => randomBytes(200)),
      smtpGarbled('dot', '999 what?\r\n'),
      smtpGarbled('dot', 'no code at all\r\n'),
      smtpGarbled('dot', '2\r\n'),
      trickle(300),
      sayAndClose('random text'),
      binaryThenSilence,
    ])
    phases.enter('garbage')
    await sleep(GARBAGE_S * 1000)
    await garbage.close()
    await sink.start()
    phases.enter('back')
    const backAt = Date.now()
    await sleep(3000)
    stop.abort()
    const load = await loading
    const loadDone = Date.now()

    // The runner's own retries (QUEUE_RETRY_MIN/MAX, the dead-host mark) drain the queue: no flush.
    let copies = await atMx()
    const drained = await eventually(async () => {
      copies = await atMx()
      return [...load.accepted.keys()].every((id) => copies.byId.has(id))
    }, 90_000)
    const drainS = Math.round((Date.now() - loadDone) / 1000)
    const firstBackS = Math.round((Date.now() - backAt) / 1000)
    await spoolSettled(app.spoolDir) // then no dump file is read half-written
    copies = await atMx()
    const left = await spoolEnvelopes(app.spoolDir)
    const bounces = await readMbox(path.join(app.mailDir, 'sender'))
    const out = app.output()
    const failedLines = out.match(/^.*\bfailed\b.*far\.example.*$/gm) ?? []
    const deferred = (out.match(/\bdeferred\b.*far\.example/g) ?? []).length
    const unreadable = (out.match(/4\.5\.0 Unreadable reply/g) ?? []).length
    const lost = [...load.accepted.entries()].filter(([id, q]) => !copies.byId.has(id) && !left.some((e) => e.id === q)).map(([id]) => id)
    const duplicated = [...copies.byId.entries()].filter(([, c]) => c.length > 1).map(([id]) => id)
    const restarts = await totalRestarts(app)
    await mem.stop()

    record({
      test: 'remote MX hung, refused, answering garbage mid-load (dependencies-mx.test.ts)',
      load: `outbound messages from a TRUSTED_NETWORKS client over 2 connections to :25, routed by TRANSPORT_MAP to smtp-sink; ${CONCURRENCY} connections to the MX, timeouts connect 3 s, greeting 3 s, command 5 s; retry 1-2 s`,
      injected: `smtp-sink SIGSTOP ${HUNG_S} s, then stopped ${STOPPED_S} s, then garbage on its port ${GARBAGE_S} s (${Object.entries(
        garbage.connections,
      )
        .map(([k, n]) => `${k} ×${n}`)
        .join(', ')}), then restarted`,
      sent: load.sent,
      accepted: load.accepted.size,
      delivered: copies.byId.size,
      lost: lost.length,
      duplicated: duplicated.length,
      restarts,
      peakRssMiB: mem.max(),
      result: `at the MX: ${atMxBy.before} before, ${(atMxBy.hung ?? 0) - (atMxBy.before ?? 0)} more by the end of the hang; ${deferred} attempts deferred (${unreadable} on an unreadable reply), ${failedLines.length} failed, ${bounces.length} bounces to the sender; ${duplicated.length} stored twice by the MX (lost 250s); ${copies.unfinished} transactions the MX stopped before their end (unfinished dumps); queue ${drained ? `drained ${drainS} s after the load stopped, ${firstBackS} s after the MX returned` : `NOT drained (${left.length} left)`}; ${load.tempfailed} 4xx to the client. Replies to the client by phase: ${phases.summary()}`,
      durationS: Math.round((Date.now() - started) / 1000),
    })
    t.diagnostic(`deferred ${deferred}, unreadable ${unreadable}, duplicated ${JSON.stringify(duplicated)} | ${phases.summary()}`)

    assert.ok(drained, `queue drained to the MX (${left.length} left)`)
    assert.deepEqual(lost, [], 'accepted, neither at the MX nor in the spool')
    assert.deepEqual(failedLines, [], 'no recipient failed: deferred only')
    assert.equal(bounces.length, 0, 'no bounce to the sender')
    assert.ok(deferred > 0, 'attempts were deferred while the MX was away')
    // How many garbled replies an attempt meets in the 10 s of garbage depends on timing (a timed-out
    // host is marked down for a while): 0 in one CI run of three. The count is in the row; that a
    // garbled reply code is deferred as unreadable is asserted in services/delivery/test/smtp-reply.test.ts.
    // Only transactions frozen by the SIGSTOP after the MX stored them can arrive twice: at most
    // one per connection to the MX.
    assert.ok(duplicated.length <= CONCURRENCY, `duplicates beyond the lost-250 window: ${JSON.stringify(duplicated)}`)
    const truncated = copies.messages.filter((m) => {
      const c = checkDelivered(m)
      return !c.id || !c.whole
    })
    assert.equal(copies.broken, 0, `truncated messages at the MX: ${JSON.stringify(truncated.map((m) => m.slice(0, 600)))}`)
    assert.equal(restarts, 0)
  },
)
