// What the verdict needs from a spam engine: a score, the rules that made it, and (rspamd) the
// engine's own recommended action.
import type { FilterEnvelope } from '@facteur/filter-client'

export type SpamResult = { score: number; rules: string[]; action?: string }

export type SpamEngineClient = {
  readonly name: 'spamassassin' | 'rspamd'
  scan(message: Buffer, envelope: FilterEnvelope): Promise<SpamResult>
  /** Resolves when the engine answers; throws why not. */
  ping(): Promise<void>
}
