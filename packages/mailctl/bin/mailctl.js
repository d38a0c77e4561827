#!/usr/bin/env node
// mailctl: runs the built CLI (dist/) when present, else the TypeScript sources through tsx.
import { existsSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const here = path.dirname(fileURLToPath(import.meta.url))
const built = path.join(here, '..', 'dist', 'main.js')
if (existsSync(built)) {
  await import(built)
} else {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=source', path.join(here, '..', 'src', 'main.ts'), ...process.argv.slice(2)], { stdio: 'inherit' })
  process.exit(r.status ?? 1)
}
