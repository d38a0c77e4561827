// mailctl import docker-mailserver DIR [--dry-run]: what a docker-mailserver host's configuration
// directory (its docker-data/dms/config) holds that Facteur takes as it is:
//   postfix-accounts.cf  `address|{SCHEME}hash[|fields]`: users, their hashes kept (SHA512-CRYPT
//                        is verified here; the extra fields are Dovecot's and dropped)
//   dovecot-quotas.cf    `address:SIZE`: their own quotas
//   postfix-virtual.cf   `alias target[,target...]`: aliases, `@domain` entries included
//   postfix-regexp.cf    `/pattern/ target`: aliases_regexp, whose format it is
//   opendkim/keys/DOMAIN/SELECTOR.private, rspamd/dkim/TYPE-BITS-SELECTOR-DOMAIN.private.txt: DKIM keys
//   postfix-relaymap.cf  `@domain [host]:port`: a relay per sender domain (the SENDER_RELAY_MAP to set)
//   postfix-sasl-password.cf `@domain user:password` or `[host]:port user:password`: relay_passwords,
//                        whose format it already is
//   postfix-send-access.cf, postfix-receive-access.cf  `address REJECT` (setup email restrict):
//                        sender_access and recipient_access lines, which submission and the MX ask
// Users, aliases and keys that exist here already are kept as they are, so a second run changes
// nothing. Every domain must be in LOCAL_DOMAINS first. What cannot be taken is listed (aliases of
// a bare local part), and the settings under which its Maildirs
// (/var/mail/DOMAIN/USER) are ours in place.
import { createPrivateKey } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import {
  formatAliases,
  formatUsers,
  isDomainEntry,
  normalizeAddress,
  parseAliases,
  parseRegexpAliases,
  parseUsers,
  REGEXP_ALIASES_FILE,
  splitAddress,
  withQuota,
} from '@facteur/accounts'
import { dkimKeyFile, findDkimKey } from '@facteur/config'
import { register, UsageError } from './commands.js'
import { writeSecret } from './dkim.js'
import { readText, replaceFile } from './tables.js'

/** A file's lines without comments, blank lines or CR. */
const lines = (text: string): string[] =>
  text
    .split('\n')
    .map((l) => l.replace(/\r$/, '').trim())
    .filter((l) => l && !l.startsWith('#'))

/** A table's text with `more` lines after what it held (which may lack its last newline). */
const appended = (text: string, more: string[]): string => `${text && !text.endsWith('\n') ? `${text}\n` : text}${more.join('\n')}\n`

const domainOf = (name: string): string => name.slice(name.lastIndexOf('@') + 1).toLowerCase()

type Key = { domain: string; selector: string; file: string }

async function dkimKeys(dir: string): Promise<Key[]> {
  const keys: Key[] = []
  const opendkim = path.join(dir, 'opendkim', 'keys')
  for (const domain of await fs.readdir(opendkim).catch(() => [] as string[]))
    for (const name of await fs.readdir(path.join(opendkim, domain)).catch(() => [] as string[]))
      if (name.endsWith('.private'))
        keys.push({ domain: domain.toLowerCase(), selector: name.slice(0, -8), file: path.join(opendkim, domain, name) })
  const rspamd = path.join(dir, 'rspamd', 'dkim')
  for (const name of await fs.readdir(rspamd).catch(() => [] as string[])) {
    const m = /^(?:rsa|ed25519)-\d+-([a-z0-9]+)-(.+)\.private\.txt$/i.exec(name)
    if (m) keys.push({ domain: m[2].toLowerCase(), selector: m[1].toLowerCase(), file: path.join(rspamd, name) })
  }
  return keys
}

register('import', {
  'docker-mailserver': {
    usage: 'import docker-mailserver DIR [--dry-run]   # its docker-data/dms/config',
    async run(ctx) {
      const dir = ctx.args[0]
      if (!dir) throw new UsageError('expected the docker-mailserver config directory (docker-data/dms/config)')
      const accountsText = await fs.readFile(path.join(dir, 'postfix-accounts.cf'), 'utf8').catch(() => null)
      if (accountsText === null) throw new UsageError(`${dir}: no postfix-accounts.cf there (docker-mailserver's docker-data/dms/config)`)
      const dry = ctx.flags.has('--dry-run')
      const local = ctx.config.localDomains
      const notes: string[] = []

      const accounts = lines(accountsText).map((l) => l.split('|'))
      const virtual = lines(await readText(path.join(dir, 'postfix-virtual.cf'))).map((l) => l.split(/\s+/))
      const keys = await dkimKeys(dir)
      const relayMap = lines(await readText(path.join(dir, 'postfix-relaymap.cf'))).map((l) => l.split(/\s+/))
      // Every domain named must be ours first: an entry for another would be inert here.
      const domains = new Set([
        ...accounts.map(([login]) => domainOf(login ?? '')),
        ...virtual.filter(([name]) => name?.includes('@')).map(([name]) => domainOf(name)),
        ...keys.map((k) => k.domain),
        ...relayMap.filter(([name]) => name?.startsWith('@')).map(([name]) => domainOf(name)),
      ])
      const missing = [...domains].filter((d) => d && !local.includes(d))
      if (missing.length) throw new UsageError(`add ${missing.join(', ')} to LOCAL_DOMAINS first (now ${local.join(', ')})`)

      // Users and their quotas.
      const quotas = new Map<string, number>()
      for (const line of lines(await readText(path.join(dir, 'dovecot-quotas.cf')))) {
        const colon = line.lastIndexOf(':')
        const m = /^(\d+)\s*([KMGT]?)B?$/i.exec(line.slice(colon + 1).trim())
        if (colon > 0 && m)
          quotas.set(normalizeAddress(line.slice(0, colon)), Number(m[1]) * 1024 ** ' KMGT'.indexOf(m[2].toUpperCase() || ' '))
        else notes.push(`dovecot-quotas.cf: not a quota line: ${line}`)
      }
      const usersFile = path.join(ctx.config.configDir, 'users')
      const users = parseUsers(await readText(usersFile))
      let added = 0
      for (const [login = '', hash = ''] of accounts) {
        const address = normalizeAddress(login)
        if (!splitAddress(address) || !/^\{[A-Z0-9.-]+\}\S+$/i.test(hash)) {
          notes.push(`postfix-accounts.cf: not an account line: ${login}|...`)
          continue
        }
        if (users.has(address)) {
          notes.push(`${address}: a user here already, kept as it is`)
          continue
        }
        const quota = quotas.get(address)
        const user = { address, password: hash, rest: [] }
        users.set(address, quota === undefined ? user : withQuota(user, quota))
        added++
      }

      // Aliases.
      const aliasesFile = path.join(ctx.config.configDir, 'aliases')
      const aliases = parseAliases(await readText(aliasesFile))
      let aliased = 0
      for (const [name = '', targetText = ''] of virtual) {
        const key = isDomainEntry(name) ? name.toLowerCase() : normalizeAddress(name)
        if (!name.includes('@')) {
          notes.push(`postfix-virtual.cf: ${name}: an alias of a bare local part (every domain) is not taken; write one per domain`)
          continue
        }
        if (aliases.has(key) || users.has(key)) {
          notes.push(`${key}: an alias or user here already, kept as it is`)
          continue
        }
        const targets = targetText
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean)
          .map((t) => (isDomainEntry(t) ? t.toLowerCase() : normalizeAddress(t)))
        if (!targets.length || targets.some((t) => !isDomainEntry(t) && !splitAddress(t))) {
          notes.push(`postfix-virtual.cf: not an alias line: ${name} ${targetText}`)
          continue
        }
        aliases.set(key, targets)
        aliased++
      }
      // Regular-expression aliases: aliases_regexp has postfix-regexp.cf's format; lines there already are kept once.
      const regexpFile = path.join(ctx.config.configDir, REGEXP_ALIASES_FILE)
      const regexpText = await readText(regexpFile)
      const haveRegexps = new Set(lines(regexpText))
      const regexpLines = lines(await readText(path.join(dir, 'postfix-regexp.cf'))).filter((l) => !haveRegexps.has(l))
      for (const p of parseRegexpAliases(regexpLines.join('\n')).problems)
        notes.push(`postfix-regexp.cf: ${p.reason} (taken as it is; the services skip that line and log it)`)

      // DKIM keys, as PKCS#8 (opendkim writes PKCS#1).
      let keyed = 0
      for (const k of keys) {
        const file = dkimKeyFile(ctx.config.configDir, k.domain, k.selector)
        if (
          await fs.stat(file).then(
            () => true,
            () => false,
          )
        ) {
          notes.push(`${file}: a key here already, kept as it is`)
          continue
        }
        let pem: string
        try {
          pem = createPrivateKey(await fs.readFile(k.file))
            .export({ type: 'pkcs8', format: 'pem' })
            .toString()
        } catch (err) {
          notes.push(`${k.file}: not a private key (${(err as Error).message})`)
          continue
        }
        if (!dry) await writeSecret(ctx, file, pem)
        keyed++
      }

      // Relays per sender domain, and their credentials (the same format as relay_passwords).
      const senderRelays: string[] = []
      for (const [name = '', dest] of relayMap) {
        if (name.startsWith('@') && dest) senderRelays.push(`${domainOf(name)}=${dest}`)
        else if (name.startsWith('@'))
          notes.push(
            `postfix-relaymap.cf: ${name} (no relay: it skipped DEFAULT_RELAY_HOST) is not taken; RELAY_HOST, when set, serves every domain SENDER_RELAY_MAP does not name`,
          )
        else notes.push(`postfix-relaymap.cf: not a relay line: ${name}`)
      }
      const passwordsFile = path.join(ctx.config.configDir, 'relay_passwords')
      const passwordsText = await readText(passwordsFile)
      const known = new Set(lines(passwordsText).map((l) => l.split(/\s+/)[0].toLowerCase()))
      const credentials: string[] = []
      for (const line of lines(await readText(path.join(dir, 'postfix-sasl-password.cf')))) {
        const key = line.split(/\s+/)[0].toLowerCase()
        // The line holds a password: it is never printed.
        if (!/^\S+\s+[^:\s]+:.+$/.test(line)) notes.push(`postfix-sasl-password.cf: not a KEY USER:PASSWORD line (key ${key})`)
        else if (known.has(key)) notes.push(`relay_passwords: ${key} is there already, kept as it is`)
        else credentials.push(line)
      }

      // Accounts that may not send, or not receive: access lines, whose format these are.
      const restrictions: { file: string; lines: string[]; text: string }[] = []
      for (const [from, to] of [
        ['postfix-send-access.cf', 'sender_access'],
        ['postfix-receive-access.cf', 'recipient_access'],
      ] as const) {
        const file = path.join(ctx.config.configDir, to)
        const text = await readText(file)
        const known = new Set(lines(text).map((l) => l.split(/\s+/)[0].toLowerCase()))
        const taken = lines(await readText(path.join(dir, from))).filter((l) => {
          const key = l.split(/\s+/)[0].toLowerCase()
          if (!/^\S+\s+\S/.test(l)) notes.push(`${from}: not a KEY ACTION line: ${l}`)
          else if (known.has(key)) notes.push(`${to}: ${key} is there already, kept as it is`)
          else return true
          return false
        })
        if (taken.length) restrictions.push({ file, lines: taken, text })
      }

      if (!dry) {
        if (regexpLines.length) await replaceFile(regexpFile, appended(regexpText, regexpLines))
        for (const r of restrictions) await replaceFile(r.file, appended(r.text, r.lines))
        await replaceFile(usersFile, formatUsers(users.values()))
        await replaceFile(aliasesFile, formatAliases(aliases))
        if (credentials.length) await writeSecret(ctx, passwordsFile, appended(passwordsText, credentials))
      }
      const verb = dry ? 'would import' : 'imported'
      const restricted = restrictions.reduce((n, r) => n + r.lines.length, 0)
      ctx.out(
        `${verb} ${added} users, ${aliased} aliases, ${keyed} DKIM keys, ${credentials.length} relay credentials, ${restricted} restrictions, ${regexpLines.length} regexp aliases from ${dir}`,
      )
      for (const n of notes) ctx.out(`; ${n}`)
      // The settings under which its mailboxes and keys serve as they are.
      if (ctx.config.mailbox.format !== 'maildir' || !ctx.config.mailbox.pathTemplate.endsWith('/%d/%u'))
        ctx.out(
          '; set MAILBOX_FORMAT=maildir and MAILBOX_PATH=/var/mail/%d/%u: its Maildirs (/var/mail/DOMAIN/USER) are then used in place',
        )
      const mapped = ctx.config.outbound.senderRelayMap.map((e) => `${e.pattern}=${e.destination.text}`)
      if (senderRelays.some((e) => !mapped.includes(e)))
        ctx.out(`; set SENDER_RELAY_MAP=${[...new Set([...mapped, ...senderRelays])].join(',')}: its relays per sender domain`)
      // Delivery signs with a domain's only key whatever its selector (findDkimKey), so the records
      // published for docker-mailserver keep verifying; unless the domain has a DKIM_SELECTOR key here.
      if (!dry)
        for (const k of keys) {
          const used = await findDkimKey(ctx.config.configDir, k.domain, ctx.config.outbound.dkimSelector, ctx.config.localDomains)
          if (used && used.selector !== k.selector)
            ctx.out(
              `; ${k.domain} signs with its ${used.selector} key here, not the imported ${k.selector} one: remove ${used.file} to use it`,
            )
        }
      return 0
    },
  },
})
