// RFC 5321 §4.4 trace field; protocol names from RFC 3848 (ESMTP, ESMTPS, ESMTPA, ESMTPSA).
// A field that hides its client has no "from" clause, as Postfix writes one for mail posted on
// its own host (RFC 5322 §3.6.7 lets the tokens be any); the protocol still says TLS and AUTH.

export function receivedHeader(opts: {
  helo: string
  ip: string
  reverse?: string
  hostname: string
  queueId: string
  esmtp: boolean
  tls: boolean
  authenticated: boolean
  recipient?: string
  /** Name neither the client's address nor its HELO (SUBMISSION_HIDE_CLIENT). */
  hideClient?: boolean
  date?: Date
}): string {
  const proto = (opts.esmtp ? 'ESMTP' : 'SMTP') + (opts.tls ? 'S' : '') + (opts.authenticated ? 'A' : '')
  const helo = opts.helo.replace(/[^\x21-\x7e]/g, '?').slice(0, 255) || 'unknown'
  const ip = opts.ip.includes(':') && !opts.ip.startsWith('::ffff:') ? `IPv6:${opts.ip}` : opts.ip.replace(/^::ffff:/, '')
  const from = `from ${helo} (${opts.reverse ? opts.reverse + ' ' : ''}[${ip}])`
  const forPart = opts.recipient ? `\r\n\tfor <${opts.recipient}>` : ''
  const by = opts.hideClient ? `by ${opts.hostname} (Facteur, from an authenticated client)` : `${from}\r\n\tby ${opts.hostname} (Facteur)`
  return `Received: ${by} with ${proto} id ${opts.queueId}${forPart};\r\n\t${rfc5322Date(opts.date ?? new Date())}\r\n`
}

/** RFC 5322 §3.3 date-time, in UTC: `Sat, 28 Nov 2026 05:49:15 +0000`. */
export function rfc5322Date(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
  const p2 = (n: number): string => String(n).padStart(2, '0')
  return `${days[d.getUTCDay()]}, ${p2(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`
}
