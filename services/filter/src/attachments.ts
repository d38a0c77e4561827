// Banned attachments (FILTER_BANNED_EXTENSIONS): amavis's banned files, which the seed's
// "amavis-like wrapper" does, by the name's last extension as Windows runs it (trailing dots
// and spaces dropped, so `invoice.pdf.exe`, `x.exe.` and `photo\u202Egpj.exe` are all .exe).
// Every MIME part is looked at, in forwarded messages too (message/rfc822), through the MIME
// splitter of ZoneMTA and WildDuck (@zone-eu/mailsplit), which decodes RFC 2231 and RFC 2047
// file names; inside archives (zip) nothing is looked at: that is clamd's job. A message the
// splitter will not take apart (more than 1,000 MIME parts, a part's header over 1 MiB: MIME bombs,
// never a mail client's) cannot be examined, and is refused rather than let through unexamined.
import { finished } from 'node:stream/promises'
import { Splitter } from '@zone-eu/mailsplit'

/** The banned names found, in message order; or why the message could not be examined. */
export type AttachmentCheck = { banned: string[] } | { unexamined: string }

export async function bannedAttachments(message: Buffer, banned: ReadonlySet<string>): Promise<AttachmentCheck> {
  if (banned.size === 0) return { banned: [] }
  const found: string[] = []
  const splitter = new Splitter()
  splitter.on('data', (chunk) => {
    if (chunk.type !== 'node') return
    const name = chunk.filename
    if (name && banned.has(extensionOf(name))) found.push(name)
  })
  splitter.end(message)
  try {
    await finished(splitter)
  } catch (err) {
    return { unexamined: (err as Error).message }
  }
  return { banned: found }
}

/** The extension Windows would run the file as: lower case, without trailing dots and spaces. */
export function extensionOf(name: string): string {
  const base = name.replace(/[\s.]+$/u, '').replace(/^.*[/\\]/, '')
  const dot = base.lastIndexOf('.')
  return dot < 0 ? '' : base.slice(dot + 1).toLowerCase()
}
