// `alias@domain: target, target` one alias a line; `#` starts a comment.
import { normalizeAddress } from './address.js'

export type AliasTable = Map<string, string[]>

export function parseAliases(text: string): AliasTable {
  const aliases: AliasTable = new Map()
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim()
    if (!line) continue
    const colon = line.indexOf(':')
    if (colon < 0) continue
    const name = normalizeAddress(line.slice(0, colon))
    const targets = line
      .slice(colon + 1)
      .split(/[\s,]+/)
      .map((t) => t.trim())
      .filter((t) => t.includes('@'))
    aliases.set(name, [...(aliases.get(name) ?? []), ...targets])
  }
  return aliases
}

export function formatAliases(aliases: AliasTable): string {
  return [...aliases].map(([name, targets]) => `${name}: ${targets.join(', ')}`).join('\n') + '\n'
}
