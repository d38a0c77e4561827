// mailctl dkim keygen DOMAIN [--selector=S] [--ed25519] [--force]: a DKIM key pair (RFC 6376;
// RSA 2048 by default, Ed25519 per RFC 8463) in CONFIG_DIR/dkim/DOMAIN.SELECTOR.key, where
// delivery finds it at send time, and the TXT record to publish.
import { generateKeyPairSync } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { isIP } from 'node:net'
import { dkimKeyFile, findDkimKey } from '@facteur/config'
import { flagValue, register, UsageError, type Context } from './commands.js'
import { dkimRecord } from './dns-records.js'

export function selectorOf(ctx: Context): string {
  const s = (flagValue(ctx, 'selector') ?? ctx.config.outbound.dkimSelector).toLowerCase()
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(s))
    throw new UsageError(`${s}: a selector is DNS labels such as facteur or 2026a`)
  return s
}

/** The address mail leaves from: --address=IP, else OUTBOUND_BIND_ADDRESS, else the first OUTBOUND_SELF_ADDRESSES. */
export function sendingAddress(ctx: Context): string | undefined {
  const { outbound } = ctx.config
  const address = flagValue(ctx, 'address') ?? outbound.bindAddress ?? outbound.selfAddresses[0]
  if (address && !isIP(address)) throw new UsageError(`${address} is not an IP address`)
  return address
}

/**
 * What `mailctl dns show|check DOMAIN [--selector=S] [--address=IP]` are about: the key of
 * --selector, else the one delivery signs the domain's mail with (findDkimKey), else DKIM_SELECTOR's.
 */
export async function recordArgs(ctx: Context): Promise<{ domain: string; selector: string; keyFile: string; address?: string }> {
  const domain = localDomain(ctx)
  const address = sendingAddress(ctx)
  const { configDir, localDomains } = ctx.config
  const found = flagValue(ctx, 'selector') ? null : await findDkimKey(configDir, domain, selectorOf(ctx), localDomains)
  const selector = found?.selector ?? selectorOf(ctx)
  return { domain, selector, keyFile: found?.file ?? dkimKeyFile(configDir, domain, selector), address }
}

export function localDomain(ctx: Context): string {
  const domain = ctx.args[0]?.toLowerCase().replace(/\.$/, '')
  if (!domain) throw new UsageError('expected a domain such as example.org')
  if (!ctx.config.localDomains.includes(domain))
    throw new UsageError(`${domain} is not in LOCAL_DOMAINS (${ctx.config.localDomains.join(', ')})`)
  return domain
}

/** Puts a secret where delivery reads it (a DKIM key, relay_passwords): written whole and renamed, readable by the services' user only. */
export async function writeSecret(ctx: Context, file: string, pem: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o750 })
  const tmp = `${file}.mailctl.${process.pid}`
  await fs.writeFile(tmp, pem, { mode: 0o640 })
  const { uid, gid } = ctx.config.mailbox
  if (uid !== undefined && process.getuid?.() === 0) await fs.chown(tmp, uid, gid ?? uid)
  await fs.rename(tmp, file)
}

register('dkim', {
  keygen: {
    usage: 'dkim keygen DOMAIN [--selector=S] [--ed25519] [--force]',
    async run(ctx) {
      const domain = localDomain(ctx)
      const selector = selectorOf(ctx)
      const file = dkimKeyFile(ctx.config.configDir, domain, selector)
      const exists = await fs.stat(file).then(
        () => true,
        () => false,
      )
      if (exists && !ctx.flags.has('--force'))
        throw new UsageError(`${file} exists already (--force replaces it; a new --selector=S rotates without breaking mail in flight)`)
      const { privateKey } = ctx.flags.has('--ed25519')
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 2048 })
      const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
      await writeSecret(ctx, file, pem)
      ctx.out(`wrote ${file}`)
      if (selector !== ctx.config.outbound.dkimSelector)
        ctx.out(
          `; delivery signs with DKIM_SELECTOR=${ctx.config.outbound.dkimSelector}: set DKIM_SELECTOR=${selector} once the record below is published`,
        )
      ctx.out('; publish this record:')
      ctx.out(dkimRecord(domain, selector, pem))
      return 0
    },
  },
})
