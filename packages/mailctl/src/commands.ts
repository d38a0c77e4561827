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
