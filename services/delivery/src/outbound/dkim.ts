// DKIM signing (RFC 6376) at send time, the one place the appliance signs: a message leaving for
// another host whose From: domain is one of ours (or a subdomain of one, such as MAIL_HOSTNAME
// for bounces) is signed with CONFIG_DIR/dkim/DOMAIN.DKIM_SELECTOR.key, made by
// `mailctl dkim keygen`, or the domain's only key there whatever its selector (findDkimKey). The signature goes in front of the message (RFC 6376 §5.6).
import fs from 'node:fs/promises'
import { dkimSign } from 'mailauth/lib/dkim/sign.js'
import addressparser from 'nodemailer/lib/addressparser'
import { findDkimKey, type Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import { headerValue, parseHeaderBlock } from '@facteur/reception'

export type Signer = {
  /** The message with a DKIM-Signature in front, or as it was when it is not ours to sign. */
  sign(message: Buffer): Promise<{ message: Buffer; domain?: string }>
}

/** The From: domain of a message (its first address), lower case; null without one. */
export function fromDomain(message: Buffer): string | null {
  const end = message.indexOf('\r\n\r\n')
  const head = message.subarray(0, end < 0 ? Math.min(message.length, 256 * 1024) : end).toString('latin1')
  const from = parseHeaderBlock(head).find((f) => f.lower === 'from')
  if (!from) return null
  const list = addressparser(headerValue(from), { flatten: true })
  const address = list.find((a) => a.address)?.address
  const at = address ? address.lastIndexOf('@') : -1
  return address && at > 0
    ? address
        .slice(at + 1)
        .toLowerCase()
        .replace(/\.$/, '')
    : null
}

/** Our domain that signs for `domain`: itself, or the longest of LOCAL_DOMAINS it is under. */
export function signingDomain(localDomains: readonly string[], domain: string): string | null {
  let best: string | null = null
  for (const d of localDomains) if ((domain === d || domain.endsWith(`.${d}`)) && (!best || d.length > best.length)) best = d
  return best
}

/** A domain's private key and its selector (findDkimKey), read again when the file changes; null without one. */
export type KeyFor = (domain: string) => Promise<{ key: string; selector: string } | null>

export function dkimKeys(config: Config): KeyFor {
  const keys = new Map<string, { stamp: string; key: string }>()
  return async (domain) => {
    const found = await findDkimKey(config.configDir, domain, config.outbound.dkimSelector, config.localDomains)
    if (!found) return null
    const cached = keys.get(found.file)
    if (cached && cached.stamp === found.stamp) return { key: cached.key, selector: found.selector }
    const key = await fs.readFile(found.file, 'utf8').catch(() => null)
    if (key === null) return null // removed since it was found
    keys.set(found.file, { stamp: found.stamp, key })
    return { key, selector: found.selector }
  }
}

export function createSigner(config: Config, logger: Logger, keyFor: KeyFor): Signer {
  const warned = new Set<string>()

  return {
    async sign(message) {
      const from = fromDomain(message)
      const domain = from ? signingDomain(config.localDomains, from) : null
      if (!domain) return { message }
      const found = await keyFor(domain)
      if (!found) {
        if (!warned.has(domain))
          logger.warn('no DKIM key: mail leaves unsigned', {
            domain,
            selector: config.outbound.dkimSelector,
            hint: `mailctl dkim keygen ${domain}`,
          })
        warned.add(domain)
        return { message }
      }
      const { signatures, errors } = await dkimSign(message, {
        canonicalization: 'relaxed/relaxed',
        // Always given: without it mailauth 4.x reads the clock twice for t=, once for the hash
        // it signs and once for the field it writes, and about 1 signature in 400 (those whose
        // signing straddles a half second) leaves with a t= that was not signed: dkim=fail.
        signTime: new Date(),
        signatureData: [{ signingDomain: domain, selector: found.selector, privateKey: found.key }],
      })
      if (errors.length || !signatures.trim()) {
        logger.warn('DKIM signing failed: mail leaves unsigned', {
          domain,
          err: String((errors[0] as Error)?.message ?? errors[0] ?? 'no signature'),
        })
        return { message }
      }
      return { message: Buffer.concat([Buffer.from(signatures, 'latin1'), message]), domain }
    },
  }
}
