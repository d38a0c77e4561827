// Dependencies failing: the DNS server (real dnsmasq, the appliance's DNS_SERVERS) hangs
// (SIGSTOP: queries are never answered), then stops (queries refused), then comes back, while two
// loads run: inbound mail from remote.example to a local user (SPF, DKIM and DMARC checked by the
// filter) and outbound mail from a TRUSTED_NETWORKS client to far.example (direct delivery: an MX
// lookup, then Postfix's smtp-sink).
//   inbound:  accepted and labelled: Authentication-Results says temperror for what DNS could not
//             answer (RFC 7208 §8.6 lets the receiver accept or defer; we do what policyd-spf and
//             OpenDMARC do by default: services/filter/README.md), within FILTER_SCAN_TIMEOUT;
//             never a message without Authentication-Results; spf=pass again once DNS is back.
//   outbound: deferred (451 4.4.3), never bounced; the queue drains to the MX once DNS is back.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { startAppliance } from '../support/appliance.js'
import { startDns } from '../support/dnsmasq.js'
import { startSmtpSink } from '../support/smtp-sink.js'
import { readMbox } from '../support/mbox.js'
import { deliveredCopies, runLoad, checkDelivered } from './load.js'
import { Phases, eventually, sleep } from './phases.js'
import { record, sampleMemory, spoolEnvelopes, spoolSettled, totalRestarts } from './figures.js'

const SCAN_TIMEOUT_S = 5
const HUNG_S = 15
const STOPPED_S = 6
type Phase = 'before' | 'hung' | 'stopped' | 'back'

test(
  'DNS hung and stopped mid-load: inbound mail is accepted with Authentication-Results temperror within the scan timeout, outbound mail is deferred, never bounced, and drains once DNS is back',
  { timeout: 240_000 },
  async (t) => {
    const started = Date.now()
    const sink = await startSmtpSink()
    t.after(() => sink.close())
    const dns = await startDns({
      mx: [{ domain: 'far.example', host: 'mx.far.example' }],
      a: [{ name: 'mx.far.example', ip: '127.0.0.1' }],
      txt: [
        { name: 'remote.example', text: 'v=spf1 ip4:127.0.0.1 -all' },
        { name: '_dmarc.remote.example', text: 'v=DMARC1; p=reject' },
      ],
    })
    t.after(() => dns.close())
    const app = await startAppliance({
      timeoutMs: 120_000,
      services: ['filter', 'smtp-ingress', 'delivery'],
      users: { 'alice@ours.example': 'pw', 'sender@ours.example': 'pw' },
      env: {
        DNS_SERVERS: dns.server,
        OUTBOUND_PORT: String(sink.port),
        TRUSTED_NETWORKS: '127.0.0.2',
        CLAMAV_ENABLED: 'false',
        SPAM_ENGINE: 'off',
        FILTER_FAILURE: 'tempfail',
        FILTER_SCAN_TIMEOUT: `${SCAN_TIMEOUT_S}s`,
        FILTER_TIMEOUT: '20s',
        QUEUE_RETRY_MIN: '1s',
        QUEUE_RETRY_MAX: '2s',
        DELAY_WARNING: 'off',
      },
    })
    t.after(() => app.stop())
    const mem = sampleMemory(app)
    const port = app.port('smtp-ingress', 'smtp')

    const phases = new Phases<Phase>('before')
    const acceptedIn = new Map<string, Phase>()
    const listen = (label: string) => {
      const hear = phases.listener(label)
      return (r: Parameters<typeof hear>[0]) => {
        hear(r)
        if (r.command === 'dot' && r.reply.startsWith('250')) acceptedIn.set(r.id, phases.current)
      }
    }
    const stop = new AbortController()
    const common = { port, count: 100_000, concurrency: 2, budgetMs: 200_000, signal: stop.signal }
    const inboundLoad = runLoad({ ...common, recipients: ['alice@ours.example'], runId: 'in', onReply: listen('in ') })
    const outboundLoad = runLoad({
      ...common,
      recipients: ['someone@far.example'],
      from: 'sender@ours.example',
      localAddress: '127.0.0.2',
      runId: 'out',
      onReply: listen('out '),
    })

    const flowing = (p: Phase) => ['in', 'out'].every((l) => phases.count(p, new RegExp(`^${l} 250`)) >= 2)
    assert.ok(await eventually(() => flowing('before'), 90_000), `no mail accepted before the outage: ${phases.summary()}`)
    const sinkBefore = (await sink.received()).length
    phases.enter('hung')
    await dns.pause()
    await sleep(HUNG_S * 1000)
    phases.enter('stopped')
    await dns.stop()
    await sleep(STOPPED_S * 1000)
    // Nothing reached the MX during the outage but what was looked up before it.
    const sinkDuringOutage = (await sink.received()).length
    await dns.start()
    phases.enter('back')
    const recovered = await eventually(() => flowing('back'), 60_000)
    const recoveredMs = phases.elapsed('back')
    await sleep(2000)
    stop.abort()
    const inbound = await inboundLoad
    const outbound = await outboundLoad
    const loadDone = Date.now()

    // The queue drains: every accepted outbound message reaches the MX, every inbound one alice.
    let atMx = deliveredCopies([])
    let inMbox = deliveredCopies([])
    const drained = await eventually(async () => {
      atMx = deliveredCopies((await sink.received()).map((m) => m.message))
      inMbox = deliveredCopies(await readMbox(path.join(app.mailDir, 'alice')))
      return (
        [...outbound.accepted.keys()].every((id) => atMx.byId.has(id)) && [...inbound.accepted.keys()].every((id) => inMbox.byId.has(id))
      )
    }, 60_000)
    const drainS = Math.round((Date.now() - loadDone) / 1000)
    await spoolSettled(app.spoolDir) // then no dump file or mailbox is read half-written
    atMx = deliveredCopies((await sink.received()).map((m) => m.message))
    inMbox = deliveredCopies(await readMbox(path.join(app.mailDir, 'alice')))
    const left = await spoolEnvelopes(app.spoolDir)
    const bounces = await readMbox(path.join(app.mailDir, 'sender'))
    const failedLines = app.output().match(/^.*\bfailed\b.*far\.example.*$/gm) ?? []
    const deferredDns = (app.output().match(/4\.4\.3 Cannot (look up the MX of|resolve)/g) ?? []).length

    // What the filter wrote on each inbound message, by the phase it was accepted in.
    const auth = (m: string): string => {
      const head = m.split(/\n\n/)[0].replace(/\n[ \t]+/g, ' ')
      const ar = /^Authentication-Results: mx\.ours\.example;(.*)$/m.exec(head)?.[1] ?? ''
      return ar ? `spf=${/spf=(\w+)/.exec(ar)?.[1]} dmarc=${/dmarc=(\w+)/.exec(ar)?.[1]}` : 'none'
    }
    const labels: Record<string, Record<string, number>> = {}
    for (const [id, copies] of inMbox.byId) {
      const p = acceptedIn.get(id) ?? '?'
      const l = auth(copies[0])
      labels[p] ??= {}
      labels[p][l] = (labels[p][l] ?? 0) + 1
    }
    const noLabel = [...inMbox.byId.values()].filter((c) => auth(c[0]) === 'none').length
    const lostIn = [...inbound.accepted.keys()].filter((id) => !inMbox.byId.has(id))
    const lostOut = [...outbound.accepted.keys()].filter(
      (id) => !atMx.byId.has(id) && !left.some((e) => e.id === outbound.accepted.get(id)),
    )
    const dupOut = [...atMx.byId.values()].filter((c) => c.length > 1).length
    const dupIn = [...inMbox.byId.values()].filter((c) => c.length > 1).length
    const callerTimeouts = (app.output().match(/no verdict within/g) ?? []).length
    const restarts = await totalRestarts(app)
    await mem.stop()

    const showLabels = Object.entries(labels)
      .map(
        ([p, l]) =>
          `${p}: ${Object.entries(l)
            .map(([k, n]) => `${k} ×${n}`)
            .join(', ')}`,
      )
      .join('; ')
    record({
      test: 'DNS hung and stopped mid-load (dependencies-dns.test.ts)',
      load: `inbound (remote.example -> alice, SPF -all + DMARC p=reject published) and outbound (trusted client -> far.example, direct MX delivery to smtp-sink), 2 connections each to :25; FILTER_FAILURE=tempfail, FILTER_SCAN_TIMEOUT=${SCAN_TIMEOUT_S}s`,
      injected: `dnsmasq SIGSTOP ${HUNG_S} s, then stopped ${STOPPED_S} s (queries refused), then restarted`,
      sent: inbound.sent + outbound.sent,
      accepted: inbound.accepted.size + outbound.accepted.size,
      delivered: inMbox.byId.size + atMx.byId.size,
      lost: lostIn.length + lostOut.length,
      duplicated: dupIn + dupOut,
      restarts,
      peakRssMiB: mem.max(),
      result: `inbound labels by phase accepted in: ${showLabels}; ${noLabel} without Authentication-Results; filter calls the caller gave up on: ${callerTimeouts}. Outbound: ${deferredDns} attempts deferred 4.4.3 by DNS, ${failedLines.length} failed, ${bounces.length} bounces to the sender, ${sinkDuringOutage - sinkBefore} reached the MX during the outage, queue ${drained ? `drained ${drainS} s after the load` : `NOT drained (${left.length} left)`}. ${recovered ? `Both flows accepted again ${(recoveredMs / 1000).toFixed(1)} s after DNS returned` : 'NOT recovered within 60 s'}. Replies by phase: ${phases.summary()}`,
      durationS: Math.round((Date.now() - started) / 1000),
    })
    t.diagnostic(`${showLabels} | ${phases.summary()}`)

    assert.ok(recovered, 'mail flows again once DNS is back')
    assert.ok(drained, `queue drained (${left.length} left)`)
    assert.equal(noLabel, 0, 'every inbound message carries Authentication-Results')
    assert.ok((labels.hung?.['spf=temperror dmarc=temperror'] ?? 0) > 0, `inbound accepted with temperror while DNS hangs: ${showLabels}`)
    assert.ok(
      (labels.stopped?.['spf=temperror dmarc=temperror'] ?? 0) > 0,
      `inbound accepted with temperror while DNS is down: ${showLabels}`,
    )
    assert.ok((labels.back?.['spf=pass dmarc=pass'] ?? 0) > 0, `spf=pass again once DNS is back: ${showLabels}`)
    assert.ok(deferredDns > 0, 'outbound attempts deferred because DNS could not answer')
    assert.deepEqual(failedLines, [], 'no outbound recipient failed')
    assert.equal(bounces.length, 0, 'no bounce to the sender')
    assert.equal(callerTimeouts, 0, 'the filter answered within its scan timeout')
    assert.deepEqual(lostIn, [])
    assert.deepEqual(lostOut, [])
    assert.equal(dupIn + dupOut, 0, 'duplicates')
    assert.equal(inMbox.broken + atMx.broken, 0, 'truncated messages')
    assert.ok([...atMx.byId.values()].every((c) => checkDelivered(c[0]).whole))
  },
)
