// GET /: the appliance at a glance, for a person: every service's state, health and checks,
// restarts, the queue, the last delivery and the counters. Refreshes itself every 10 s.
import type { ApplianceHealth } from './appliance.js'

const esc = (s: unknown): string =>
  String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)

/** 2026-11-28T08:57:23.596Z as 2026-11-28 08:57:23 UTC: shorter, and it wraps at the spaces. */
const readableTime = (iso: string): string => iso.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC')

const badge = (status: string): string => `<span class="badge ${esc(status)}">${esc(status)}</span>`

export function statusPage(h: ApplianceHealth, title = 'Facteur'): string {
  const rows = Object.entries(h.services)
    .map(([name, s]) => {
      const checks = Object.entries(s.health.checks ?? {})
        .map(([c, r]) => `<li>${badge(r.status)} ${esc(c)}${r.detail ? `: ${esc(r.detail)}` : ''}</li>`)
        .join('')
      const detail = s.health.detail ? `<li>${esc(s.health.detail)}</li>` : ''
      const engine = s.engineHealth ? ` <small>(Docker: ${esc(s.engineHealth)})</small>` : ''
      const restart = s.lastRestart ? `<br><small>last: ${esc(readableTime(s.lastRestart.at))}, ${esc(s.lastRestart.reason)}</small>` : ''
      return `<tr data-service="${esc(name)}">
  <th>${esc(name)}</th>
  <td>${esc(s.state)}${engine}${s.gaveUp ? ' <strong>gave up restarting</strong>' : ''}</td>
  <td>${badge(s.health.status)}<ul>${checks}${detail}</ul></td>
  <td class="n">${s.restarts}${restart}</td>
</tr>`
    })
    .join('\n')
  // The supervisor itself: serving this page, so running; healthy while it can read the services
  // (the Docker API, or its children), as its own /healthz says. Nothing restarts it but Docker.
  const watching = h.mode === 'docker' ? 'Docker API' : 'child processes'
  const self = `<tr data-service="supervisor">
  <th>supervisor</th>
  <td>running <small>(serving this page)</small></td>
  <td>${badge(h.error ? 'fail' : 'ok')}<ul><li>${esc(watching)}: ${h.error ? esc(h.error) : 'watched'}</li></ul></td>
  <td class="n">-</td>
</tr>`
  const c = h.counters
  const counters: [string, number][] = [
    ['received', c.received],
    ['rejected', c.rejected],
    ['delivered', c.delivered],
    ['deferred', c.deferred],
    ['bounced', c.bounced],
    ['viruses', c.virusFound],
    ['spam', c.spam],
    ['AUTH failures', c.authFailures],
    ['restarts', c.restarts],
  ]
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="10">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}: ${esc(h.status)}</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; color: #222; }
  h1 { font-size: 1.4em; } table { border-collapse: collapse; width: 100%; table-layout: fixed; }
  th, td { text-align: left; vertical-align: top; padding: .4em .6em; border-bottom: 1px solid #ddd; }
  tbody th { white-space: nowrap; } .n { text-align: right; } ul { margin: .2em 0 0; padding-left: 1.2em; } small { color: #666; }
  .badge { display: inline-block; padding: 0 .5em; border-radius: .6em; color: #fff; font-size: .85em; }
  .ok { background: #2a7d2a; } .degraded { background: #b8860b; } .starting { background: #5a6e8c; } .fail { background: #b22222; }
  @media (max-width: 40em) { table { table-layout: auto; } tbody th { white-space: normal; } }
  dl { display: grid; grid-template-columns: repeat(auto-fill, minmax(9em, 1fr)); gap: .5em; }
  dl div { border: 1px solid #ddd; border-radius: .4em; padding: .4em .6em; } dt { color: #666; font-size: .85em; } dd { margin: 0; font-size: 1.3em; overflow-wrap: anywhere; }
</style>
</head>
<body>
<h1>${esc(title)} ${badge(h.status)}</h1>
<p>${esc(h.mode)} mode${h.project ? `, compose project <code>${esc(h.project)}</code>` : ''}; checked ${esc(readableTime(h.checkedAt))}${h.error ? `; <strong>${esc(h.error)}</strong>` : ''}</p>
<dl>
  <div><dt>queue</dt><dd id="queue">${h.queue.depth ?? 'unknown'}</dd></div>
  <div><dt>last delivery</dt><dd><small>${esc(h.lastDelivery ? readableTime(h.lastDelivery) : 'none yet')}</small></dd></div>
  ${counters.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${v}</dd></div>`).join('\n  ')}
</dl>
<table>
<colgroup><col style="width: 16%"><col style="width: 20%"><col style="width: 40%"><col style="width: 24%"></colgroup>
<thead><tr><th>service</th><th>state</th><th>health</th><th class="n">restarts</th></tr></thead>
<tbody>
${rows}
${self}
</tbody>
</table>
<p><small><a href="/health">/health</a> (JSON) · <a href="/metrics">/metrics</a> (Prometheus)</small></p>
</body>
</html>
`
}
