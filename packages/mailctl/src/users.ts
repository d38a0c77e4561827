// mailctl user add|del|passwd|quota|list
import {
  formatUsers,
  hashPassword,
  normalizeAddress,
  openAccounts,
  parseUsers,
  splitAddress,
  userQuota,
  withQuota,
} from '@facteur/accounts'
import { register, UsageError, type Context } from './commands.js'
import { readPassword } from './password-input.js'
import { readText, replaceFile } from './tables.js'
import path from 'node:path'

const usersFile = (ctx: Context): string => path.join(ctx.config.configDir, 'users')

function address(ctx: Context): string {
  const a = ctx.args[0]
  const parts = a ? splitAddress(a) : null
  if (!parts) throw new UsageError('expected an address such as alice@example.org')
  if (!ctx.config.localDomains.includes(parts.domain))
    throw new UsageError(`${parts.domain} is not in LOCAL_DOMAINS (${ctx.config.localDomains.join(', ')})`)
  return normalizeAddress(a)
}

async function setPassword(ctx: Context, mustExist: boolean): Promise<number> {
  const addr = address(ctx)
  const users = parseUsers(await readText(usersFile(ctx)))
  if (mustExist && !users.has(addr)) throw new UsageError(`no such user: ${addr}`)
  if (!mustExist && users.has(addr)) throw new UsageError(`${addr} exists already (mailctl user passwd to change the password)`)
  const password = await readPassword(ctx)
  if (password.length < 8) throw new UsageError('a password needs at least 8 characters')
  users.set(addr, { address: addr, password: await hashPassword(password), rest: users.get(addr)?.rest ?? [] })
  await replaceFile(usersFile(ctx), formatUsers(users.values()))
  ctx.out(`${mustExist ? 'password changed for' : 'added'} ${addr}`)
  return 0
}

register('user', {
  add: { usage: 'user add ADDRESS [--password-stdin]', run: (ctx) => setPassword(ctx, false) },
  passwd: { usage: 'user passwd ADDRESS [--password-stdin]', run: (ctx) => setPassword(ctx, true) },
  del: {
    usage: 'user del ADDRESS',
    async run(ctx) {
      const addr = address(ctx)
      const users = parseUsers(await readText(usersFile(ctx)))
      if (!users.delete(addr)) throw new UsageError(`no such user: ${addr}`)
      await replaceFile(usersFile(ctx), formatUsers(users.values()))
      ctx.out(`deleted ${addr} (the mailbox is kept)`)
      return 0
    },
  },
  quota: {
    usage: 'user quota ADDRESS [SIZE|none]',
    async run(ctx) {
      const addr = address(ctx)
      const users = parseUsers(await readText(usersFile(ctx)))
      const user = users.get(addr)
      if (!user) throw new UsageError(`no such user: ${addr}`)
      const size = ctx.args[1]
      if (size === undefined) {
        const own = userQuota(user)
        const global = ctx.config.mailbox.quota
        ctx.out(own !== undefined ? `${addr}: ${quotaText(own)}` : `${addr}: ${quotaText(global)} (MAILBOX_QUOTA)`)
        return 0
      }
      // Dovecot's units; 0 is no quota for this user, none removes theirs (MAILBOX_QUOTA applies).
      const m = /^(\d+)\s*([KMGT]?)B?$/i.exec(size)
      if (!m && size !== 'none')
        throw new UsageError(`expected a size such as 500M, 2G or 0 (no quota), or none (MAILBOX_QUOTA applies), not ${size}`)
      const bytes = m ? Number(m[1]) * 1024 ** ' KMGT'.indexOf(m[2].toUpperCase() || ' ') : null
      users.set(addr, withQuota(user, bytes))
      await replaceFile(usersFile(ctx), formatUsers(users.values()))
      ctx.out(bytes === null ? `${addr}: own quota removed (MAILBOX_QUOTA applies)` : `${addr}: quota ${quotaText(bytes)}`)
      return 0
    },
  },
  list: {
    usage: 'user list',
    async run(ctx) {
      const acc = openAccounts({
        configDir: ctx.config.configDir,
        localDomains: ctx.config.localDomains,
        postmaster: ctx.config.postmaster,
        delimiter: ctx.config.recipientDelimiter,
      })
      await acc.refresh()
      for (const u of acc.allUsers()) ctx.out(u.address)
      return 0
    },
  },
})

function quotaText(bytes: number): string {
  return bytes === 0 ? 'no quota' : `${bytes} bytes`
}
