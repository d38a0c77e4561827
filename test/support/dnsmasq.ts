// A throwaway authoritative-only DNS server (dnsmasq) for MX, A, AAAA, PTR and TXT lookups in tests.
import { promises as dns } from 'node:dns'
import { isIP } from 'node:net'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { freePort } from './ports.js'
import { startLoopbackDaemon, tempDir, type Outage } from './process.js'
import { reverseName } from '@facteur/config'

export interface DnsOptions {
  /** MX records; a domain may have several. pref defaults to 10. */
  mx?: { domain: string; host: string; pref?: number }[]
  a?: { name: string; ip: string }[]
  aaaa?: { name: string; ip: string }[]
  /** PTR records for reverse lookups, ip is IPv4 or IPv6 (the reverse name is computed). */
  ptr?: { ip: string; name: string }[]
  /**
   * TXT records. A string longer than 255 octets is split by dnsmasq into 255-octet strings (fine
   * for DKIM keys: verifiers concatenate them); an array gives the strings exactly (each <= 255).
   */
  txt?: { name: string; text: string | string[] }[]
  /** Log every query (--log-queries) to output(). */
  log?: boolean
  /** More dnsmasq options, e.g. ['--cname=alias.example,target.example']. */
  extraArgs?: string[]
}

/** From Outage: stop() (queries refused: ECONNREFUSED), start() on the same port, pause() (queries never answered: timeouts), resume(). */
export interface Dns extends Outage {
  port: number
  /** '127.0.0.1:PORT', for Resolver#setServers() or a service's resolver config. */
  server: string
  /** A node Resolver that asks only this server (1 s timeout, 2 tries). */
  resolver(): dns.Resolver
  /** dnsmasq's output (every query with log: true). */
  output(): string
  close(): Promise<void>
}

/**
 * Starts `dnsmasq --no-daemon` on 127.0.0.1:<free port> (UDP and TCP) with no upstream servers
 * and `--local=/#/`: names and types it does not hold get NXDOMAIN or NODATA, never REFUSED, and
 * nothing is forwarded. /etc/hosts, /etc/resolv.conf and /etc/dnsmasq.conf are not read.
 *
 * dnsmasq gotcha, handled here: on the command line `--txt-record=name,a,b` splits at every comma
 * and keeps quotes literally; only a config file understands "quoted, strings". A config file line
 * is cut at about 1,000 characters, though, so a TXT record whose strings hold a comma (DMARC
 * `rua=mailto:a,mailto:b`) goes to <tmp>/dnsmasq.conf quoted, and every other TXT record goes on
 * the command line, where any length works (a 4096-bit DKIM key included).
 */
export async function startDns(options: DnsOptions = {}): Promise<Dns> {
  const dir = await tempDir('dnsmasq')
  const port = await freePort()
  const confFile = join(dir, 'dnsmasq.conf')
  const args = [
    '--no-daemon',
    '--no-resolv',
    '--no-hosts',
    `--port=${port}`,
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    `--conf-file=${confFile}`,
    `--pid-file=${join(dir, 'dnsmasq.pid')}`,
    '--local=/#/',
  ]
  if (options.log) args.push('--log-queries')
  const conf: string[] = []
  for (const { domain, host, pref = 10 } of options.mx ?? []) args.push(`--mx-host=${domain},${host},${pref}`)
  for (const { name, ip } of options.a ?? []) args.push(`--host-record=${name},${ipv4(ip)}`)
  for (const { name, ip } of options.aaaa ?? []) args.push(`--host-record=${name},${ipv6(ip)}`)
  for (const { ip, name } of options.ptr ?? []) args.push(`--ptr-record=${reverseName(ip)},${name}`)
  for (const { name, text } of options.txt ?? []) {
    const strings = typeof text === 'string' ? [text] : text
    if (strings.some((s) => s.includes(','))) {
      conf.push(`txt-record=${name},${strings.map((s) => `"${s.replace(/[\\"]/g, '\\$&')}"`).join(',')}`)
    } else {
      args.push(`--txt-record=${name},${strings.join(',')}`)
    }
  }
  args.push(...(options.extraArgs ?? []))
  await writeFile(confFile, conf.map((line) => `${line}\n`).join(''))
  if (conf.some((line) => line.length > 990)) throw new Error('startDns: a TXT record with a comma is longer than dnsmasq reads')

  const daemon = await startLoopbackDaemon('/usr/sbin/dnsmasq', args, port, dir)
  const server = `127.0.0.1:${port}`
  return {
    ...daemon,
    server,
    resolver() {
      const resolver = new dns.Resolver({ timeout: 1000, tries: 2 })
      resolver.setServers([server])
      return resolver
    },
  }
}

function ipv4(ip: string): string {
  if (isIP(ip) !== 4) throw new Error(`not an IPv4 address: ${ip}`)
  return ip
}

function ipv6(ip: string): string {
  if (isIP(ip) !== 6) throw new Error(`not an IPv6 address: ${ip}`)
  return ip
}
