// The command table: `mailctl GROUP VERB [args]`. Each group lives in its own module.
import type { Config } from '@facteur/config'

export type Context = { config: Config; args: string[]; flags: Set<string>; out: (line: string) => void; stdin: NodeJS.ReadableStream }
export type Command = { usage: string; run(ctx: Context): Promise<number> }

export const commands: Record<string, Record<string, Command>> = {}

export function register(group: string, verbs: Record<string, Command>): void {
  commands[group] = { ...(commands[group] ?? {}), ...verbs }
}

export class UsageError extends Error {
  override name = 'UsageError'
}

/** `--name=value`, or `--name value` (main.ts leaves the value among the positional args). */
export function flagValue(ctx: Context, name: string): string | undefined {
  for (const f of ctx.flags) if (f.startsWith(`--${name}=`)) return f.slice(name.length + 3)
  return ctx.flags.has(`--${name}`) ? ctx.args[1] : undefined
}
