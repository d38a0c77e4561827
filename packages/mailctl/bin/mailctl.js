#!/usr/bin/env node
// mailctl: runs the built CLI (dist/) in the image, the TypeScript sources through tsx in a checkout.
import { existsSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

// Run as root with MAIL_UID set (`docker compose exec supervisor mailctl ...`, whose container
// starts as root): act as the mail user, so the files written belong to the services reading them.
if (process.getuid?.() === 0 && /^\d+$/.test(process.env.MAIL_UID ?? '')) {
  const uid = Number(process.env.MAIL_UID)
  const gid = /^\d+$/.test(process.env.MAIL_GID ?? '') ? Number(process.env.MAIL_GID) : uid
  process.setgroups([gid])
  process.setgid(gid)
  process.setuid(uid)
}

const here = path.dirname(fileURLToPath(import.meta.url))
const built = path.join(here, '..', 'dist', 'main.js')
const source = path.join(here, '..', 'src', 'main.ts')
// The image (NODE_ENV=production) runs the build; a checkout runs its sources, never a stale build.
if (existsSync(built) && (process.env.NODE_ENV === 'production' || !existsSync(source))) {
  await import(built)
} else {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=source', source, ...process.argv.slice(2)], { stdio: 'inherit' })
  process.exit(r.status ?? 1)
}
