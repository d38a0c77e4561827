// A real rspamd (Debian rspamd) on loopback ports for tests: Debian's configuration with a
// local directory of overrides (workers on free ports, console logging, no Hyperscan compile so
// it starts in about a second, DNS only to the given server), and optional Lua rules.
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { freePort } from './ports.js'
import { isRoot, removeDir, spawnDaemon, tempDir, type Daemon } from './process.js'

export interface Rspamd {
  /** The normal worker (/checkv2, /ping). */
  port: number
  url: string
  output(): string
  close(): Promise<void>
}

/**
 * `dns` is 'IP:PORT' of a DNS server (test/support/dnsmasq.ts) so lookups fail fast instead of
 * waiting on a resolver that cannot be reached; `lua` goes into rspamd.local.lua.
 */
export async function startRspamd(options: { dns: string; lua?: string }): Promise<Rspamd> {
  const dir = await tempDir('rspamd')
  for (const d of ['local.d', 'override.d', 'db', 'run', 'log']) await mkdir(join(dir, d))
  const [port, controller] = [await freePort(), await freePort()]
  const files: Record<string, string> = {
    'local.d/worker-normal.inc': `bind_socket = "127.0.0.1:${port}";\ncount = 1;\n`,
    'override.d/worker-controller.inc': `bind_socket = "127.0.0.1:${controller}";\ncount = 1;\n`,
    'override.d/worker-proxy.inc': 'enabled = false;\ncount = 0;\n',
    'override.d/logging.inc': 'type = "console";\nlevel = "notice";\n',
    'local.d/options.inc': `dns { nameserver = ["${options.dns}"]; timeout = 1s; retransmits = 1; }\ndisable_hyperscan = true;\n`,
    'rspamd.local.lua': options.lua ?? '',
  }
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text)
  await chmod(dir, 0o777)
  for (const d of ['db', 'run', 'log']) await chmod(join(dir, d), 0o777)
  const args = [
    '-f',
    '-c',
    '/etc/rspamd/rspamd.conf',
    `--var=LOCAL_CONFDIR=${dir}`,
    `--var=DBDIR=${join(dir, 'db')}`,
    `--var=RUNDIR=${join(dir, 'run')}`,
    `--var=LOGDIR=${join(dir, 'log')}`,
    ...(isRoot() ? ['-u', '_rspamd', '-g', '_rspamd'] : []),
  ]
  const daemon: Daemon = spawnDaemon('/usr/bin/rspamd', args)
  try {
    // rspamd compiles its Lua rules at start: about a second idle, half a minute on a busy machine.
    await daemon.ready(port, 120_000)
  } catch (err) {
    await daemon.stop()
    await removeDir(dir)
    throw err
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => daemon.output(),
    async close() {
      await daemon.stop()
      await removeDir(dir)
    },
  }
}
