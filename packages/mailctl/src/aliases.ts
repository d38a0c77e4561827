// mailctl alias add|del|list
import path from 'node:path'
import { formatAliases, isDomainEntry, normalizeAddress, parseAliases, splitAddress } from '@facteur/accounts'
import { register, UsageError, type Context } from './commands.js'
import { readText, replaceFile } from './tables.js'

const aliasesFile = (ctx: Context): string => path.join(ctx.config.configDir, 'aliases')

/** An address, or `@domain` (a domain's catch-all as an alias; a domain alias as a target). */
function checked(a: string | undefined, what: string): string {
  if (a && isDomainEntry(a)) return a.toLowerCase()
  if (!a || !splitAddress(a)) throw new UsageError(`expected ${what} such as team@example.org or @example.org`)
  return normalizeAddress(a)
}

register('alias', {
  add: {
    usage: 'alias add ALIAS|@DOMAIN TARGET|@DOMAIN [TARGET...]',
    async run(ctx) {
      const name = checked(ctx.args[0], 'an alias')
      if (!ctx.config.localDomains.includes(name.slice(name.lastIndexOf('@') + 1)))
        throw new UsageError(`${name}: its domain is not in LOCAL_DOMAINS`)
      const targets = ctx.args
        .slice(1)
        .flatMap((t) => t.split(','))
        .filter(Boolean)
        .map((t) => checked(t, 'a target'))
      if (!targets.length) throw new UsageError('expected at least one target')
      const aliases = parseAliases(await readText(aliasesFile(ctx)))
      aliases.set(name, [...new Set([...(aliases.get(name) ?? []), ...targets])])
      await replaceFile(aliasesFile(ctx), formatAliases(aliases))
      ctx.out(`${name}: ${aliases.get(name)!.join(', ')}`)
      return 0
    },
  },
  del: {
    usage: 'alias del ALIAS [TARGET]',
    async run(ctx) {
      const name = checked(ctx.args[0], 'an alias')
      const aliases = parseAliases(await readText(aliasesFile(ctx)))
      if (!aliases.has(name)) throw new UsageError(`no such alias: ${name}`)
      if (ctx.args[1]) {
        const left = aliases.get(name)!.filter((t) => normalizeAddress(t) !== normalizeAddress(ctx.args[1]))
        if (left.length) aliases.set(name, left)
        else aliases.delete(name)
      } else aliases.delete(name)
      await replaceFile(aliasesFile(ctx), formatAliases(aliases))
      ctx.out(`updated ${name}`)
      return 0
    },
  },
  list: {
    usage: 'alias list',
    async run(ctx) {
      for (const [name, targets] of parseAliases(await readText(aliasesFile(ctx)))) ctx.out(`${name}: ${targets.join(', ')}`)
      return 0
    },
  },
})
