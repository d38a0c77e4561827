// DNS records as zone-file lines: the DKIM key record (RFC 6376 §3.6.1; Ed25519 per RFC 8463
// §4.2), TXT strings cut at 255 octets (RFC 1035 §3.3.14), reverse names (RFC 1035 §3.5,
// RFC 3596 §2.5).
import { createPrivateKey, createPublicKey } from 'node:crypto'

/** A TXT value as quoted strings of at most 255 octets. */
export function txt(value: string): string {
  const parts: string[] = []
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255)}"`)
  return parts.join(' ')
}

/** The `v=DKIM1` value for a private key (PEM): RSA as SubjectPublicKeyInfo, Ed25519 as its 32 octets. */
export function dkimValue(privateKeyPem: string): string {
  const pub = createPublicKey(createPrivateKey(privateKeyPem))
  const der = pub.export({ type: 'spki', format: 'der' })
  if (pub.asymmetricKeyType === 'ed25519') return `v=DKIM1; k=ed25519; p=${der.subarray(der.length - 32).toString('base64')}`
  return `v=DKIM1; k=rsa; p=${der.toString('base64')}`
}

export function dkimRecord(domain: string, selector: string, privateKeyPem: string): string {
  return `${selector}._domainkey.${domain}. IN TXT ${txt(dkimValue(privateKeyPem))}`
}
