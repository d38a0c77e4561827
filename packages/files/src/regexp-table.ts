// One line of a Postfix regexp_table(5) / pcre_table(5): `[!]/pattern/flags RESULT`, the pattern
// delimited by any character that is neither a letter, a digit, white space nor a backslash,
// matched case-insensitively unless the flags hold `i` (as Postfix's tables), `m` for multi-line.
// What the result means is the table's (header_checks' actions, regexp aliases' targets), and so
// is `$1`... in it: the pattern's groups.

export type RegexpLine = { pattern: RegExp; negate: boolean; result: string }

/**
 * A logical line of the table (tableLines), or why it is not one. `source` may transform the
 * pattern's text before it is compiled (header_checks matches bytes).
 */
export function parseRegexpLine(entry: string, source: (text: string) => string = (t) => t): RegexpLine | string {
  if (/^(if|endif)\b/i.test(entry)) return `"${entry.split(/\s/, 1)[0]}" blocks are not supported`
  const negate = entry.startsWith('!')
  const body = negate ? entry.slice(1) : entry
  const delim = body[0]
  if (delim === undefined || /[\p{L}\p{N}\s\\]/u.test(delim)) return `"${entry}" does not start with a /pattern/`
  let end = 1
  while (end < body.length && body[end] !== delim) end += body[end] === '\\' ? 2 : 1
  if (end >= body.length) return `"${entry}": the pattern has no closing ${delim}`
  // `\/` (an escaped delimiter) is an identity escape in a RegExp: the text is compiled as it is.
  const text = source(body.slice(1, end))
  const rest = /^(\S*)\s+(\S.*)$/.exec(body.slice(end + 1))
  if (!rest) return `"${entry}" has a pattern and no result`
  const [, flags, result] = rest
  if (/[^im]/.test(flags)) return `"${flags}": the flags Facteur knows are i (match case) and m (multi-line)`
  const jsFlags = (flags.split('i').length % 2 === 1 ? 'i' : '') + (flags.split('m').length % 2 === 0 ? 'm' : '')
  try {
    return { pattern: new RegExp(text, jsFlags), negate, result }
  } catch (err) {
    return `/${text}/ is not a pattern: ${(err as Error).message}`
  }
}

/** regexp_table(5): `$1`, `${1}` in `text` are the match's groups (none when it was negated), `$$` a dollar. */
export function substituteGroups(text: string, m: RegExpExecArray | null): string {
  return text.replace(/\$(\$|\d|\{\d+\})/g, (_, ref: string) => (ref === '$' ? '$' : (m?.[Number(ref.replace(/[{}]/g, ''))] ?? '')))
}
