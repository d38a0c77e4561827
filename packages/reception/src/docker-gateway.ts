// Docker's userland proxy (IPv6 clients, rootless Docker, an engine without iptables) hands the
// listeners every connection to a published port from the bridge network's gateway: that address
// stands for every client, not for one. TRUSTED_NETWORKS must not hold it (the ingress refuses to
// start), and the limits we keep per client address (SMTP_MAX_CLIENTS_PER_IP, the AUTH ban) must
// not treat it as one client, or one stranger's failures would lock everybody out. Inside a
// container on a bridge network the gateway is the default route's, read from /proc/net/route.
import fs from 'node:fs/promises'
import path from 'node:path'
import { inNetworks, type Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import { clientKey } from './client-limit.js'

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

/**
 * Whether a client's address stands for many clients: the Docker bridge gateway, or one of
 * SHARED_CLIENT_ADDRESSES (a load balancer or proxy that hides clients without the PROXY protocol).
 */
export function sharedAddress(config: Config, gateway: string | null): (ip: string) => boolean {
  // The gateway also written as an IPv4-mapped IPv6 address.
  return (ip) => (gateway !== null && clientKey(ip) === gateway) || inNetworks(config.sharedClients, ip)
}

/** One line at start, so that an administrator reading the logs knows why addresses look alike. */
export function announceGateway(logger: Logger, gateway: string | null, fields: Record<string, unknown> = {}): void {
  if (!gateway) return
  logger.info('on a Docker bridge network: clients of published ports may appear from its gateway', { gateway, ...fields })
}
