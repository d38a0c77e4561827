// Header fields of a message: split into fields (with their folded lines), looked up by name.

export type HeaderField = { name: string; lower: string; raw: string }

/**
 * Headers that mailbox readers trust and that only the final delivery may write: Dovecot and
 * mail clients believe Status/X-Status/X-UID/X-IMAP/X-Keywords/Content-Length in an mbox.
 */
export const STRIPPED_HEADERS = new Set([
  'return-path',
  'delivered-to',
  'content-length',
  'status',
  'x-status',
  'x-uid',
  'x-imap',
  'x-imapbase',
  'x-keywords',
])

/** RFC 5322 §2.2: a field is a line with a colon, followed by its continuation lines (WSP first). */
export function parseHeaderBlock(block: string): HeaderField[] {
  const fields: HeaderField[] = []
  for (const line of block.split('\r\n')) {
    if (line === '') continue
    if ((line[0] === ' ' || line[0] === '\t') && fields.length) {
      fields[fields.length - 1].raw += '\r\n' + line
      continue
    }
    const colon = line.indexOf(':')
    const name = colon > 0 ? line.slice(0, colon).trim() : ''
    fields.push({ name, lower: name.toLowerCase(), raw: line })
  }
  return fields
}

export function headerValue(field: HeaderField): string {
  const colon = field.raw.indexOf(':')
  return field.raw
    .slice(colon + 1)
    .replace(/\r\n[ \t]/g, ' ')
    .trim()
}
