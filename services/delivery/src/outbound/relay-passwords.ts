// CONFIG_DIR/relay_passwords: the credentials for SENDER_RELAY_MAP's relays, in the form of
// Postfix's smtp_sasl_password_maps with smtp_sender_dependent_authentication, re-read when it
// changes: `KEY USER:PASSWORD` a line, KEY the sender's address, `@DOMAIN` of the sender, or the
// relay as SENDER_RELAY_MAP names it (`[smtp.example.net]:587`); looked up in that order. A
// password may hold colons (the first one ends the user name). Lines it cannot use are logged with
// their line, never with their text (it holds a password).
import path from 'node:path'
import { tableLines, watchedFiles } from '@facteur/files'
import type { Logger } from '@facteur/logging'

export type RelayCredentials = { user: string; pass: string }
export type RelayPasswords = {
  /** The credentials for mail from `sender` through `relay` (its SENDER_RELAY_MAP text), if any. */
  lookup(sender: string, relay: string): Promise<RelayCredentials | undefined>
}

export const RELAY_PASSWORDS_FILE = 'relay_passwords'

export function openRelayPasswords(opts: { configDir: string; logger: Logger }): RelayPasswords {
  const file = path.join(opts.configDir, RELAY_PASSWORDS_FILE)
  let table = new Map<string, RelayCredentials>()
  const refresh = watchedFiles([file], (_, text) => {
    const parsed = parseRelayPasswords(text)
    table = parsed.table
    for (const p of parsed.problems) opts.logger.warn('relay_passwords line ignored', { file, line: p.line, reason: p.reason })
  })
  return {
    async lookup(sender, relay) {
      await refresh()
      const s = sender.toLowerCase()
      return table.get(s) ?? table.get(s.slice(s.lastIndexOf('@'))) ?? table.get(relay.toLowerCase())
    },
  }
}

export function parseRelayPasswords(text: string): { table: Map<string, RelayCredentials>; problems: { line: number; reason: string }[] } {
  const table = new Map<string, RelayCredentials>()
  const problems: { line: number; reason: string }[] = []
  for (const { line, text: entry } of tableLines(text)) {
    const m = /^(\S+)\s+([^:\s]+):(.+)$/.exec(entry)
    if (!m) problems.push({ line, reason: 'not KEY USER:PASSWORD' })
    else if (!table.has(m[1].toLowerCase())) table.set(m[1].toLowerCase(), { user: m[2], pass: m[3] })
  }
  return { table, problems }
}
