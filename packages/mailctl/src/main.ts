// mailctl entry point: `mailctl GROUP VERB [ARGS] [--flags]`.
import { loadConfig, loadDotenv, ConfigError } from '@facteur/config'
import { commands, UsageError } from './commands.js'
import './users.js'
import './aliases.js'
import './queue.js'
import './queue-admin.js'
import './dkim.js'
import './dns.js'
import './import.js'
import './dns-check.js'
import './header-checks.js'

function usage(): string {
  const lines = Object.values(commands).flatMap((verbs) => Object.values(verbs).map((c) => `  mailctl ${c.usage}`))
  return `usage:\n${lines.join('\n')}\n`
}

async function main(argv: string[]): Promise<number> {
  const flags = new Set(argv.filter((a) => a.startsWith('--')))
  const [group, ...rest] = argv.filter((a) => !a.startsWith('--'))
  // `mailctl dns DOMAIN` is short for `mailctl dns show DOMAIN`.
  if (group === 'dns' && rest[0] && !commands.dns?.[rest[0]]) rest.unshift('show')
  const [verb, ...args] = rest
  const cmd = group && verb ? commands[group]?.[verb] : undefined
  if (!cmd) {
    process.stderr.write(usage())
    return group === 'help' || !group ? 0 : 64
  }
  loadDotenv()
  const config = loadConfig(process.env)
  return cmd.run({ config, args, flags, out: (l) => process.stdout.write(l + '\n'), stdin: process.stdin })
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`mailctl: ${err.message}\n`)
      process.exit(err instanceof ConfigError ? 78 : 64)
    }
    process.stderr.write(`mailctl: ${(err as Error).message}\n`)
    process.exit(1)
  },
)
