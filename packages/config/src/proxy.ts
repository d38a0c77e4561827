// The PROXY protocol (version 1, HAProxy's text header, or version 2, its binary one) in front of
// the MX: the peers allowed to tell the real client address. smtp-server matches exact addresses, so these are addresses,
// not networks; a connection from any other peer is an ordinary SMTP client.
import { isIP } from 'node:net'
import { ConfigError, type EnvReader } from './env.js'

export type ProxyConfig = Readonly<{
  /** Every connection from these addresses must start with a PROXY header; empty: off. */
  trusted: readonly string[]
}>

export function loadProxyConfig(r: EnvReader): ProxyConfig {
  const trusted = r.list('PROXY_TRUSTED')
  for (const a of trusted)
    if (!isIP(a))
      throw new ConfigError(
        'PROXY_TRUSTED',
        a,
        'IP addresses of the proxies that send a PROXY protocol header (addresses, not networks), separated by commas',
      )
  return Object.freeze({ trusted: Object.freeze([...trusted]) })
}
