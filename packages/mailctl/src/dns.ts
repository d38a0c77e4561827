// mailctl dns DOMAIN [--address=IP]: the records to publish for a local domain, from the running
// configuration: MX (RFC 5321 §5.1), SPF (RFC 7208), DKIM (RFC 6376, from the key on disk),
// DMARC (RFC 7489), and the A and PTR records of the sending address (forward-confirmed reverse
// DNS, which receivers check; RFC 8601's iprev).
import fs from 'node:fs/promises'
import { isIP } from 'node:net'
import { reverseName } from '@facteur/config'
import { register } from './commands.js'
import { recordArgs } from './dkim.js'
import { dkimRecord, txt } from './dns-records.js'

register('dns', {
  show: {
    usage: 'dns show DOMAIN [--selector=S] [--address=IP]   (also: mailctl dns DOMAIN)',
    async run(ctx) {
      const { domain, selector, keyFile, address } = await recordArgs(ctx)
      const { hostname, outbound, postmaster } = ctx.config
      const out = ctx.out
      out(`; DNS records for ${domain}, from this configuration (MAIL_HOSTNAME=${hostname}, OUTBOUND_MODE=${outbound.mode})`)
      out(`${domain}. IN MX 10 ${hostname}.`)
      if (outbound.mode === 'relay' && outbound.relay) {
        out(`; mail leaves through ${outbound.relay.host}: add its SPF (often an include: your provider documents) to this record`)
        out(`${domain}. IN TXT ${txt('v=spf1 mx -all')}`)
      } else {
        out(`${domain}. IN TXT ${txt(address ? `v=spf1 mx ${isIP(address) === 6 ? 'ip6' : 'ip4'}:${address} -all` : 'v=spf1 mx -all')}`)
      }
      try {
        out(dkimRecord(domain, selector, await fs.readFile(keyFile, 'utf8')))
      } catch {
        out(
          `; no DKIM key ${keyFile}: run mailctl dkim keygen ${domain}${selector === outbound.dkimSelector ? '' : ` --selector=${selector}`}`,
        )
      }
      out(`; start with p=none, read the reports, then move to quarantine or reject`)
      out(`_dmarc.${domain}. IN TXT ${txt(`v=DMARC1; p=none; adkim=r; aspf=r; rua=mailto:${postmaster}`)}`)
      if (address) {
        out(`${hostname}. IN ${isIP(address) === 6 ? 'AAAA' : 'A'} ${address}`)
        out(`; at the owner of ${address} (your hosting provider): the PTR must name ${hostname}`)
        out(`${reverseName(address)}. IN PTR ${hostname}.`)
      } else {
        out(`; ${hostname}. IN A <the public address mail leaves from>`)
        out(`; and at the owner of that address, a PTR naming ${hostname}. (pass --address=IP to print both)`)
      }
      return 0
    },
  },
})
