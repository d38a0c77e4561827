// Banned attachments (FILTER_BANNED_EXTENSIONS): amavis's banned files, which the seed's
// "amavis-like wrapper" does, by the name's last extension as Windows runs it (trailing dots
// and spaces dropped, so `invoice.pdf.exe`, `x.exe.` and `photo\u202Egpj.exe` are all .exe).
// Every MIME part is looked at, in forwarded messages too (message/rfc822), through the MIME
// splitter of ZoneMTA and WildDuck (@zone-eu/mailsplit), which decodes RFC 2231 and RFC 2047
// file names; inside archives (zip) nothing is looked at: that is clamd's job.
import { finished } from 'node:stream/promises'
import { Splitter } from '@zone-eu/mailsplit'

/** Parts looked at, at most: a message made of more is judged on its first ones. */
const MAX_PARTS = 1000

/** The names of the attachments whose extension is banned, in message order. */
export async function bannedAttachments(message: Buffer, banned: ReadonlySet<string>): Promise<string[]> {
  if (banned.size === 0) return []
  const found: string[] = []
  let parts = 0
  const splitter = new Splitter()
  splitter.on('data', (chunk) => {
    if (chunk.type !== 'node' || ++parts > MAX_PARTS) return
    const name = chunk.filename
    if (name && banned.has(extensionOf(name))) found.push(name)
  })
  splitter.end(message)
  await finished(splitter)
  return found
}

/** The extension Windows would run the file as: lower case, without trailing dots and spaces. */
export function extensionOf(name: string): string {
  const base = name.replace(/[\s.]+$/u, '').replace(/^.*[/\\]/, '')
  const dot = base.lastIndexOf('.')
  return dot < 0 ? '' : base.slice(dot + 1).toLowerCase()
}
