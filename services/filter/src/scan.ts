// One message through the engines, in parallel: the virus scan always (when enabled), the spam
// scan unless the message is too large or outbound scanning is off, sender authentication on
// inbound mail, the attachments' names (FILTER_BANNED_EXTENSIONS). Their findings go to the policy (verdict.ts).
import type { FilterConfig } from '@facteur/config'
import type { FilterEnvelope, SpamCheck, Verdict, VirusCheck } from '@facteur/filter-client'
import type { VirusScanner } from './virus.js'
import type { SpamEngineClient } from './spam/engine.js'
import type { Authenticator } from './auth.js'
import { decide } from './verdict.js'
import { bannedAttachments } from './attachments.js'

export type Engines = { virus: VirusScanner | null; spam: SpamEngineClient | null; auth: Authenticator }

export async function scanMessage(
  message: Buffer,
  envelope: FilterEnvelope,
  engines: Engines,
  config: FilterConfig,
  hostname: string,
): Promise<Verdict> {
  const [virus, spam, auth, attachments] = await Promise.all([
    engines.virus ? engines.virus.scan(message) : Promise.resolve<VirusCheck>({ status: 'off' }),
    spamScan(message, envelope, engines.spam, config.spam),
    engines.auth(message, envelope),
    bannedAttachments(message, config.bannedExtensions),
  ])
  return decide(envelope, { virus, spam, auth, attachments }, config, hostname)
}

async function spamScan(
  message: Buffer,
  envelope: FilterEnvelope,
  engine: SpamEngineClient | null,
  spam: FilterConfig['spam'],
): Promise<SpamCheck> {
  if (!engine) return { status: 'skipped', reason: 'off' }
  if (envelope.direction === 'outbound' && spam.outbound === 'off') return { status: 'skipped', reason: 'outbound' }
  if (message.length > spam.maxSize) return { status: 'skipped', reason: 'size' }
  try {
    const r = await engine.scan(message, envelope)
    return { status: 'scanned', engine: engine.name, score: r.score, rules: r.rules, ...(r.action ? { action: r.action } : {}) }
  } catch (err) {
    return { status: 'error', engine: engine.name, detail: (err as Error).message }
  }
}
