// The entry points' side: read `.env` into the environment and stop cleanly on a bad value.
import { config as dotenv } from 'dotenv'
import { ConfigError } from './env.js'

/** Loads `.env` (or ENV_FILE) without overriding variables already set. */
export function loadDotenv(env: NodeJS.ProcessEnv = process.env): void {
  dotenv({ path: env.ENV_FILE ?? '.env', quiet: true, processEnv: env as Record<string, string> })
}

/** Runs `build`; a ConfigError stops the process with one line and exit code 78 (EX_CONFIG). */
export function exitOnConfigError<T>(service: string, build: () => T): T {
  try {
    return build()
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`facteur ${service}: configuration error: ${err.message}\n`)
      process.exit(78)
    }
    throw err
  }
}
