// RFC 8601 §5: an Authentication-Results field that claims our authserv-id but arrives from
// outside was not written by us; a border MTA must remove it before anyone trusts it.

/**
 * The authserv-id of an Authentication-Results field (RFC 8601 §2.2): the first value after the
 * colon, a token or a quoted-string, with comments (CFWS) skipped. Lower-cased; null if absent.
 */
export function authservId(raw: string): string | null {
  const colon = raw.indexOf(':')
  if (colon < 0) return null
  let s = raw.slice(colon + 1).replace(/\r\n[ \t]/g, ' ')
  // Skip leading whitespace and (possibly nested) comments.
  for (;;) {
    s = s.replace(/^\s+/, '')
    if (s[0] !== '(') break
    let depth = 0
    let i = 0
    for (; i < s.length; i++) {
      if (s[i] === '\\') i++
      else if (s[i] === '(') depth++
      else if (s[i] === ')' && --depth === 0) break
    }
    s = s.slice(i + 1)
  }
  if (s[0] === '"') {
    const m = /^"((?:[^"\\]|\\.)*)"/.exec(s)
    return m ? m[1].replace(/\\(.)/g, '$1').toLowerCase() : null
  }
  const m = /^[^\s;()]+/.exec(s)
  return m ? m[0].toLowerCase() : null
}

/** True for an Authentication-Results field (by name and raw text) claiming `ourId`. */
export function claimsAuthservId(name: string, raw: string, ourId: string): boolean {
  return name.toLowerCase() === 'authentication-results' && authservId(raw) === ourId.toLowerCase()
}
