// A real spamd (Debian spamd + spamassassin) on a loopback port for tests: local tests only
// (-L: no DNS blocklists, Razor, Pyzor), Debian's rules from /usr/share/spamassassin, no Bayes,
// and optional extra rules (a local.cf) so a test can give a message a known score.
import { chmod, mkdir, copyFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { freePort } from './ports.js'
import { isRoot, startLoopbackDaemon, tempDir, type LoopbackDaemon } from './process.js'

/** SpamAssassin's GTUBE test string: its rule scores 1000. */
export const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'

/** stop()/start() (back on the same port) and pause()/resume() (hung: SIGSTOP of spamd and its children) from Outage. */
export type Spamd = LoopbackDaemon

/** `rules` is SpamAssassin configuration added to local.cf, e.g. `body T_X /x/\nscore T_X 6`. */
export async function startSpamd(options: { rules?: string } = {}): Promise<Spamd> {
  const dir = await tempDir('spamd')
  const site = join(dir, 'site')
  await mkdir(site)
  // The site config directory replaces /etc/spamassassin: keep Debian's plugin loading (*.pre).
  for (const f of await readdir('/etc/spamassassin')) if (f.endsWith('.pre')) await copyFile(join('/etc/spamassassin', f), join(site, f))
  await writeFile(join(site, 'local.cf'), ['use_bayes 0', 'bayes_auto_learn 0', 'report_safe 0', options.rules ?? ''].join('\n') + '\n')
  await chmod(dir, 0o755)
  await chmod(site, 0o755)
  const port = await freePort()
  const args = [
    `--listen=127.0.0.1:${port}`,
    '--allowed-ips=127.0.0.1',
    '-L',
    `--siteconfigpath=${site}`,
    `--pidfile=${join(dir, 'spamd.pid')}`,
    '--min-children=1',
    '--max-children=4',
    '--nouser-config',
    '--syslog=stderr',
    ...(isRoot() ? ['--username=nobody'] : []),
  ]
  return startLoopbackDaemon('/usr/sbin/spamd', args, port, dir, 30_000)
}
