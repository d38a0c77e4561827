// mailctl dns check DOMAIN [--selector=S] [--address=IP]: what DNS publishes for a local domain,
// checked against this configuration (the records `mailctl dns show` prints), through
// DNS_SERVERS: the MX names MAIL_HOSTNAME (RFC 5321 §5.1); MAIL_HOSTNAME has an address, the
// sending address's PTR names it back (forward-confirmed reverse DNS, RFC 8601 iprev); one SPF
// record (RFC 7208 §4.5) that passes for the sending address (evaluated by mailauth, includes
// and all); the DKIM record holds the public half of our key (RFC 6376 §3.6.1); a DMARC record
// (RFC 7489 §6.1). One line per check; exit 1 when one fails, so that a script can tell.
import fs from 'node:fs/promises'
import type { promises as dns } from 'node:dns'
import { spf } from 'mailauth/lib/spf/index.js'
import { resolverFor, reverseName } from '@facteur/config'
import { register } from './commands.js'
import { recordArgs } from './dkim.js'
import { dkimValue } from './dns-records.js'

type Verdict = 'ok' | 'warn' | 'FAIL'

/** The answers, or [] for a name or record that does not exist; other failures throw. */
async function lookup<T>(query: () => Promise<T[]>): Promise<T[]> {
  try {
    return await query()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOTFOUND' || code === 'ENODATA') return []
    throw new Error(`DNS did not answer (${code ?? (err as Error).message})`)
  }
}

const strings = async (resolver: dns.Resolver, name: string): Promise<string[]> =>
  (await lookup(() => resolver.resolveTxt(name))).map((parts) => parts.join(''))

/** The value of a tag in a `tag=value; ...` record (DKIM, DMARC), without spaces. */
const tag = (record: string, name: string): string | undefined =>
  new RegExp(`(?:^|;)\\s*${name}\\s*=\\s*([^;]*)`, 'i').exec(record)?.[1].replace(/\s+/g, '')

register('dns', {
  check: {
    usage: 'dns check DOMAIN [--selector=S] [--address=IP]',
    async run(ctx) {
      const { domain, selector, keyFile: file, address } = await recordArgs(ctx)
      const { hostname, outbound } = ctx.config
      const resolver = resolverFor(outbound.dnsServers)
      const host = hostname.toLowerCase()
      let failed = 0
      const say = (verdict: Verdict, what: string, detail: string): void => {
        if (verdict === 'FAIL') failed++
        ctx.out(`${verdict.padEnd(4)} ${what.padEnd(5)} ${detail}`)
      }
      const check = async (what: string, run: () => Promise<[Verdict, string]>): Promise<void> => {
        try {
          const [verdict, detail] = await run()
          say(verdict, what, detail)
        } catch (err) {
          say('FAIL', what, (err as Error).message)
        }
      }

      await check('MX', async () => {
        const mx = (await lookup(() => resolver.resolveMx(domain))).sort((a, b) => a.priority - b.priority)
        const names = mx.map((m) => `${m.priority} ${m.exchange}`).join(', ')
        if (!mx.length) return ['FAIL', `${domain} has no MX record: publish ${domain}. IN MX 10 ${hostname}.`]
        return mx.some((m) => m.exchange.toLowerCase().replace(/\.$/, '') === host)
          ? ['ok', names]
          : ['FAIL', `${names}: none is MAIL_HOSTNAME (${hostname})`]
      })

      let addresses: string[] = []
      await check('A', async () => {
        addresses = [...(await lookup(() => resolver.resolve4(hostname))), ...(await lookup(() => resolver.resolve6(hostname)))]
        if (!addresses.length) return ['FAIL', `${hostname} has no A or AAAA record`]
        if (address && !addresses.includes(address)) return ['FAIL', `${hostname} is ${addresses.join(', ')}, not ${address}`]
        return ['ok', `${hostname} ${addresses.join(', ')}`]
      })
      const sending = address ?? (outbound.mode === 'direct' ? addresses[0] : undefined)

      await check('PTR', async () => {
        if (!sending) return ['warn', 'no sending address to check (--address=IP)']
        // A PTR query, not resolver.reverse(): c-ares answers that one from /etc/hosts first.
        const names = await lookup(() => resolver.resolvePtr(reverseName(sending)))
        if (!names.length)
          return ['FAIL', `${reverseName(sending)} has no PTR record: ask the owner of ${sending} for one naming ${hostname}`]
        return names.some((n) => n.toLowerCase().replace(/\.$/, '') === host)
          ? ['ok', `${sending} ${names.join(', ')}`]
          : ['FAIL', `${sending} is ${names.join(', ')}, not MAIL_HOSTNAME (${hostname})`]
      })

      await check('SPF', async () => {
        const records = (await strings(resolver, domain)).filter((r) => /^v=spf1(\s|$)/i.test(r))
        if (!records.length) return ['FAIL', `${domain} has no SPF record (v=spf1)`]
        if (records.length > 1)
          return ['FAIL', `${domain} has ${records.length} SPF records: receivers take none (RFC 7208 §4.5 permerror)`]
        if (!sending) return ['warn', `${records[0]} (not evaluated: no sending address, --address=IP)`]
        const result = await spf({
          sender: `postmaster@${domain}`,
          ip: sending,
          helo: hostname,
          mta: hostname,
          resolver: (name, rrtype) => resolver.resolve(name, rrtype),
        })
        const verdict = result.status.result
        return verdict === 'pass' ? ['ok', `${records[0]} (pass for ${sending})`] : ['FAIL', `${records[0]}: ${verdict} for ${sending}`]
      })

      await check('DKIM', async () => {
        const pem = await fs.readFile(file, 'utf8').catch(() => null)
        if (pem === null) return ['FAIL', `no key ${file}: mailctl dkim keygen ${domain}`]
        const name = `${selector}._domainkey.${domain}`
        const records = (await strings(resolver, name)).filter((r) => /(^|;)\s*p\s*=/.test(r))
        if (!records.length) return ['FAIL', `${name} has no record: publish what mailctl dns show ${domain} prints`]
        const ours = tag(dkimValue(pem), 'p')
        return records.some((r) => tag(r, 'p') === ours)
          ? ['ok', `${name} holds the key of ${file}`]
          : ['FAIL', `${name} holds another key than ${file}`]
      })

      await check('DMARC', async () => {
        const record = (await strings(resolver, `_dmarc.${domain}`)).find((r) => /^v=DMARC1(\s*;|$)/i.test(r))
        if (!record) return ['warn', `_dmarc.${domain} has no DMARC record (v=DMARC1); receivers such as Gmail ask for one`]
        return ['ok', `p=${tag(record, 'p') ?? '(none)'}${tag(record, 'rua') ? `, reports to ${tag(record, 'rua')}` : ''}`]
      })

      ctx.out(failed ? `; ${failed} check(s) failed` : '; every check passed')
      return failed ? 1 : 0
    },
  },
})
