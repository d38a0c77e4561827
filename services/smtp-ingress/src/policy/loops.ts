// RFC 5321 §6.3: loop detection by counting Received: fields, and our own Delivered-To: marks.
import { SmtpError } from '@facteur/smtp-error'
import { headerValue, type HeaderField } from '@facteur/reception'

export const MAX_HOPS = 50

export function checkLoops(fields: HeaderField[], recipients: Iterable<string>): SmtpError | null {
  let hops = 0
  const delivered = new Set<string>()
  for (const f of fields) {
    if (f.lower === 'received') hops++
    else if (f.lower === 'delivered-to') delivered.add(headerValue(f).toLowerCase())
  }
  if (hops > MAX_HOPS) return new SmtpError(554, '4.6', 'Too many hops, mail loop suspected')
  for (const r of recipients) if (delivered.has(r.toLowerCase())) return new SmtpError(554, '4.6', `Mail loop detected for ${r}`)
  return null
}
