// Docker's userland proxy (IPv6 clients, or an engine without iptables) hands the MX every
// connection to a published port from the bridge network's gateway: if TRUSTED_NETWORKS held
// that address, anyone on the internet could relay. Inside a container on a bridge network the
// gateway is the default route's, read from /proc/net/route.
import fs from 'node:fs/promises'
import path from 'node:path'
import { ConfigError, inNetworks, type Config } from '@facteur/config'

/**
 * The default gateway when this process runs in a container attached to a bridge network (its
 * default route leaves through a veth), else null: on the host, or with `network_mode: host`,
 * clients keep their own addresses.
 */
export async function bridgeGateway(root = '/'): Promise<string | null> {
  const inContainer = await Promise.any([fs.access(path.join(root, '.dockerenv')), fs.access(path.join(root, 'run/.containerenv'))]).then(
    () => true,
    () => false,
  )
  if (!inContainer) return null
  const route = parseDefaultRoute(await fs.readFile(path.join(root, 'proc/net/route'), 'utf8').catch(() => ''))
  if (!route) return null
  // A veth's iflink names its peer (in the host's namespace), so it differs from its own ifindex;
  // a physical or host interface (network_mode: host) links to itself.
  const read = (f: string): Promise<string> =>
    fs.readFile(path.join(root, 'sys/class/net', route.iface, f), 'utf8').then(
      (s) => s.trim(),
      () => '',
    )
  const [ifindex, iflink] = await Promise.all([read('ifindex'), read('iflink')])
  if (!ifindex || ifindex === iflink) return null
  return route.gateway
}

/** The default route of a /proc/net/route table: its interface and gateway (IPv4). */
export function parseDefaultRoute(table: string): { iface: string; gateway: string } | null {
  for (const line of table.split('\n').slice(1)) {
    const [iface, destination, gateway, flags, , , , mask] = line.trim().split(/\s+/)
    // RTF_UP (0x1) | RTF_GATEWAY (0x2), destination and mask 0.0.0.0: the default route.
    if (destination !== '00000000' || mask !== '00000000' || (parseInt(flags, 16) & 3) !== 3 || !/^[0-9A-F]{8}$/i.test(gateway)) continue
    // The kernel prints the address in host byte order: little-endian on every platform Docker runs on.
    const bytes = gateway
      .match(/../g)!
      .map((b) => parseInt(b, 16))
      .reverse()
    return { iface, gateway: bytes.join('.') }
  }
  return null
}

/** Throws a ConfigError when TRUSTED_NETWORKS contains the gateway clients may appear to come from. */
export function refuseTrustedGateway(config: Config, gateway: string | null): void {
  if (!gateway || !inNetworks(config.trustedNetworks, gateway)) return
  throw new ConfigError(
    'TRUSTED_NETWORKS',
    config.trustedNetworks.text,
    `networks without ${gateway}, the Docker bridge gateway that clients of a published port appear to come from (userland proxy): everyone could relay. Run the ingress with network_mode: host, or put a proxy in front with PROXY_TRUSTED`,
  )
}
