// A real clamd (Debian clamav-daemon) on a loopback TCP port for tests. Its database is one
// `.hdb` file made here: the MD5 of the EICAR test file, so clamd starts in about a second and
// freshclam (which cannot download here) is never needed.
import { createHash } from 'node:crypto'
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { freePort } from './ports.js'
import { isRoot, startLoopbackDaemon, tempDir, type LoopbackDaemon } from './process.js'

/** The 68-byte EICAR anti-virus test file (eicar.org): harmless, detected by every scanner. */
export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
/** The name clamd reports for it: our signature's name, marked as from an unofficial database. */
export const EICAR_SIGNATURE = 'Eicar-Test-Signature.UNOFFICIAL'

/** stop()/start() (a scanner outage, back on the same port) and pause()/resume() (hung) from Outage. */
export type Clamd = LoopbackDaemon

export async function startClamd(): Promise<Clamd> {
  const dir = await tempDir('clamd')
  const port = await freePort()
  const db = join(dir, 'db')
  const md5 = createHash('md5').update(EICAR, 'latin1').digest('hex')
  await mkdir(db)
  // sigtool's MD5 format (ClamAV signature docs, "File hash signatures"): HASH:SIZE:NAME.
  await writeFile(join(db, 'facteur-test.hdb'), `${md5}:${Buffer.byteLength(EICAR, 'latin1')}:Eicar-Test-Signature\n`)
  const conf = join(dir, 'clamd.conf')
  await writeFile(
    conf,
    [
      'Foreground yes',
      `TCPSocket ${port}`,
      'TCPAddr 127.0.0.1',
      `DatabaseDirectory ${db}`,
      `PidFile ${join(dir, 'clamd.pid')}`,
      // No LogFile: in the foreground clamd logs to its standard output, kept by spawnDaemon.
      // Running as root: clamd would drop to the clamav user, which cannot read our temp dir.
      ...(isRoot() ? ['User root'] : []),
      'StreamMaxLength 30M',
      'SelfCheck 3600',
    ].join('\n') + '\n',
  )
  await chmod(dir, 0o755)

  return startLoopbackDaemon('/usr/sbin/clamd', ['-c', conf], port, dir, 20_000)
}
