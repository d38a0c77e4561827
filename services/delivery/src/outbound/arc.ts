// ARC (RFC 8617) for forwarded copies. A copy an alias (or the catch-all) sends to another host
// carries what we found when the message came in: the filter's Authentication-Results, as an
// ARC-Authentication-Results field, under an ARC-Message-Signature and an ARC-Seal made with the
// alias domain's DKIM key (CONFIG_DIR/dkim/DOMAIN.DKIM_SELECTOR.key). The next host can then
// trust our SPF and DKIM results when forwarding broke its own SPF check (RFC 8617 §1, §7.2), as
// rspamd's ARC module seals for mailcow and Mailu. `ARC_SEAL=false` turns it off.
//
// Sealed only when there is something true to say (RFC 8617 §5.1): the filter checked the message
// (our Authentication-Results is in its header) and found no ARC chain (cv=none) or a valid one
// (cv=pass); a failed or unchecked chain is passed on as it is, unsealed (§5.1.2: a failed chain
// is never sealed as passing), and so is a chain already at its 50 sets (§4.2.1).
import { createPrivateKey } from 'node:crypto'
import { sealMessage } from 'mailauth/lib/arc/index.js'
import { claimsAuthservId } from '@facteur/filter-client'
import type { Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import { parseHeaderBlock } from '@facteur/reception'
import type { KeyFor } from './dkim.js'

/** RFC 8617 §4.2.1: at most 50 ARC sets. */
const MAX_INSTANCES = 50

export type Sealer = {
  /** The message with an ARC set in front, sealed for `domain`; as it was when there is nothing to seal or no key. */
  seal(message: Buffer, domain: string): Promise<Buffer>
}

/** What the filter recorded, as the ARC set repeats it; null when the message is not to be sealed. */
export function arcInput(message: Buffer, authservId: string): { authResults: string; cv: 'none' | 'pass' } | null {
  const end = message.indexOf('\r\n\r\n')
  const fields = parseHeaderBlock(message.subarray(0, end < 0 ? message.length : end + 2).toString('latin1'))
  const ours = fields.find((f) => claimsAuthservId(f.name, f.raw, authservId))
  if (!ours) return null
  // RFC 8601 §2.2: "authserv-id; method=result ..."; kept as the filter folded it.
  const authResults = ours.raw.slice(ours.raw.indexOf(':') + 1).replace(/^[ \t]+/, '')
  const arc = /(?:^|;)\s*arc=([a-z]+)/i.exec(authResults.replace(/\r\n[ \t]/g, ' '))?.[1].toLowerCase() ?? 'none'
  const sets = fields.filter((f) => f.lower === 'arc-seal').length
  if (sets === 0 ? arc !== 'none' : arc !== 'pass' || sets >= MAX_INSTANCES) return null
  return { authResults, cv: arc === 'pass' ? 'pass' : 'none' }
}

export function createSealer(config: Config, logger: Logger, keyFor: KeyFor): Sealer {
  const warned = new Set<string>()
  return {
    async seal(message, domain) {
      if (!config.outbound.arcSeal) return message
      const input = arcInput(message, config.hostname)
      if (!input) return message
      const found = await keyFor(domain)
      // mailauth seals with rsa-sha256, the algorithm ARC verifiers check: an Ed25519 key cannot seal.
      const why = !found ? 'no DKIM key' : createPrivateKey(found.key).asymmetricKeyType !== 'rsa' ? 'the DKIM key is not RSA' : null
      if (why || !found) {
        if (!warned.has(domain))
          logger.warn(`${why}: forwarded mail leaves without an ARC seal`, {
            domain,
            selector: config.outbound.dkimSelector,
            hint: `mailctl dkim keygen ${domain}`,
          })
        warned.add(domain)
        return message
      }
      try {
        const set = await sealMessage(message, {
          signingDomain: domain,
          selector: found.selector,
          privateKey: found.key,
          ...input,
          signTime: new Date(),
        })
        return set.length ? Buffer.concat([set, message]) : message
      } catch (err) {
        logger.warn('ARC sealing failed: forwarded mail leaves unsealed', { domain, err: (err as Error).message })
        return message
      }
    },
  }
}
