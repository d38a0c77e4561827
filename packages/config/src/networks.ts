// CIDR lists (TRUSTED_NETWORKS, PROXY_TRUSTED): parsed once, matched per connection. And an
// address's reverse form, for PTR names and DNS blocklist lookups.
import { BlockList, isIP } from 'node:net'
import { ConfigError } from './env.js'

export type Network = { readonly text: string; readonly list: BlockList }

export function parseNetworks(variable: string, entries: readonly string[]): Network {
  const list = new BlockList()
  for (const entry of entries) {
    const [addr, bits] = entry.split('/')
    const family = isIP(addr)
    if (!family) throw new ConfigError(variable, entry, 'IP addresses or CIDR networks such as 192.168.1.0/24, separated by commas')
    const type = family === 4 ? 'ipv4' : 'ipv6'
    if (bits === undefined) {
      list.addAddress(addr, type)
      continue
    }
    const prefix = Number(bits)
    if (!/^\d+$/.test(bits) || prefix > (family === 4 ? 32 : 128))
      throw new ConfigError(variable, entry, 'IP addresses or CIDR networks such as 192.168.1.0/24, separated by commas')
    list.addSubnet(addr, prefix, type)
  }
  return Object.freeze({ text: entries.join(','), list })
}

/** True when `ip` (IPv4, IPv6 or IPv4-mapped IPv6) is in the networks. */
export function inNetworks(networks: Network, ip: string): boolean {
  if (networks.text === '') return false // the usual TRUSTED_NETWORKS: no BlockList lookup per command
  const addr = unmapped(ip)
  const family = isIP(addr)
  if (!family) return false
  return networks.list.check(addr, family === 4 ? 'ipv4' : 'ipv6')
}

/** The IPv4 address an IPv4-mapped IPv6 address (::ffff:192.0.2.1) stands for, else the address. */
function unmapped(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  return mapped ? mapped[1] : ip
}

/** 192.0.2.1 -> 1.2.0.192; IPv6 -> its 32 nibbles, last first (RFC 3596 §2.5; RFC 5782 §2.1, §2.4). */
export function reversedLabels(ip: string): string {
  const addr = unmapped(ip)
  if (isIP(addr) === 4) return addr.split('.').reverse().join('.')
  if (isIP(addr) !== 6) throw new Error(`not an IP address: ${ip}`)
  const [head, tail = ''] = addr.split('::')
  // A dotted IPv4 tail (64:ff9b::192.0.2.1) is the last two groups.
  const hex4 = (v4: string): string[] => {
    const [a, b, c, d] = v4.split('.').map(Number)
    return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)]
  }
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':').flatMap((g) => (g.includes('.') ? hex4(g) : [g])))
  const left = groups(head)
  const right = groups(tail)
  const zeros = addr.includes('::') ? Array<string>(8 - left.length - right.length).fill('0') : []
  const hex = [...left, ...zeros, ...right].map((group) => group.padStart(4, '0')).join('')
  return [...hex].reverse().join('.')
}

/** 192.0.2.1 -> 1.2.0.192.in-addr.arpa; IPv6 -> nibbles under ip6.arpa. */
export function reverseName(ip: string): string {
  return `${reversedLabels(ip)}.${isIP(unmapped(ip)) === 4 ? 'in-addr' : 'ip6'}.arpa`
}
