// The counters and the log events that feed them. Counting the log line, rather than calling a
// counter beside it, keeps the two from disagreeing: what /metrics counts is what the log says.
import { Counter, Gauge, Registry } from 'prom-client'

export const registry = new Registry()

/** The fields of a structured log line (winston's info object). */
export type LogEvent = { message?: unknown; service?: unknown; [field: string]: unknown }

const received = new Counter({
  name: 'facteur_messages_received_total',
  help: 'Messages accepted (250 to DATA, committed to the spool), by the service that received them.',
  labelNames: ['service'],
  registers: [registry],
})
const rejected = new Counter({
  name: 'facteur_messages_rejected_total',
  help: 'SMTP commands refused (MAIL, RCPT, DATA ...; AUTH is counted in facteur_auth_failures_total), by reply code and enhanced status code: the reason (5.1.1 no such user, 5.7.1 relay denied, virus or spam, 5.3.4 too big, 4.7.1 try later ...).',
  labelNames: ['service', 'cmd', 'code', 'enhanced'],
  registers: [registry],
})
const deliveries = new Counter({
  name: 'facteur_deliveries_total',
  help: 'Delivery attempts per recipient by outcome: delivered, deferred (retried later), bounced (failed for good, the sender is notified).',
  labelNames: ['outcome'],
  registers: [registry],
})
const lastDelivery = new Gauge({
  name: 'facteur_last_delivery_timestamp_seconds',
  help: 'When the last recipient was delivered (Unix time); 0 until then.',
  registers: [registry],
})
/** Tells the supervisor that a service restarted (its counters started again from 0). */
new Gauge({
  name: 'facteur_process_start_time_seconds',
  help: 'When this process started (Unix time).',
  registers: [registry],
}).set(Math.round(performance.timeOrigin) / 1000)
const verdicts = new Counter({
  name: 'facteur_filter_verdicts_total',
  help: 'Content filter verdicts by direction (inbound, outbound) and action (accept, tag, junk, reject, tempfail).',
  labelNames: ['direction', 'action'],
  registers: [registry],
})
const virus = new Counter({
  name: 'facteur_virus_verdicts_total',
  help: 'Virus scans by result: clean, infected, error (clamd unavailable), off (CLAMAV_ENABLED=false).',
  labelNames: ['result'],
  registers: [registry],
})
const spam = new Counter({
  name: 'facteur_spam_verdicts_total',
  help: 'Spam scans by result: spam (scanned and tagged, filed as junk or refused as spam; tag and junk also follow an SPF fail or DMARC quarantine), ham, skipped (too big, outbound, off), error.',
  labelNames: ['result'],
  registers: [registry],
})
const authFailures = new Counter({
  name: 'facteur_auth_failures_total',
  help: 'AUTH attempts refused (bad credentials, banned address, unknown mechanism).',
  labelNames: ['service'],
  registers: [registry],
})

const text = (v: unknown): string => (v === undefined || v === null ? '' : String(v))

/** Counts one log line; lines that are not outcomes are ignored. */
export function countLogEvent(e: LogEvent): void {
  const service = text(e.service)
  switch (e.message) {
    case 'queued':
    case 'held':
      // smtp-ingress and submission (held: queued on hold by header_checks); delivery's own
      // notices are logged as 'notice queued'.
      received.inc({ service })
      return
    case 'refused':
      if (e.cmd === 'AUTH') authFailures.inc({ service })
      else rejected.inc({ service, cmd: text(e.cmd), code: text(e.code), enhanced: text(e.enhanced) })
      return
    case 'delivered':
    case 'deferred':
    case 'failed':
      if (service !== 'delivery') return
      deliveries.inc({ outcome: e.message === 'failed' ? 'bounced' : e.message })
      if (e.message === 'delivered') lastDelivery.set(Date.now() / 1000)
      return
    case 'verdict': {
      const action = text(e.action)
      verdicts.inc({ direction: text(e.direction), action })
      // The filter logs the virus check's status, or the signatures found.
      const v = text(e.virus)
      virus.inc({ result: ['clean', 'off', 'error'].includes(v) ? v : 'infected' })
      // ... and the spam score when the message was scanned, else the check's status.
      if (typeof e.spam === 'number') {
        const isSpam = action === 'tag' || action === 'junk' || (action === 'reject' && e.reason === 'Message refused as spam')
        spam.inc({ result: isSpam ? 'spam' : 'ham' })
      } else spam.inc({ result: text(e.spam) || 'error' })
      return
    }
  }
}
