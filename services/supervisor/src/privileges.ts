// Docker mode: the supervisor's container starts as root only to join the group of the Docker
// socket mounted into it (its gid differs from host to host: docker, 0, 999 ...), then the
// supervisor runs as MAIL_UID like every other service.
import fs from 'node:fs'
import type { Config } from '@facteur/config'

export type Dropped = { uid: number; gid: number; socketGroup: number | null; socketAccess: boolean }

export function dropPrivileges(config: Config): Dropped | null {
  const { uid, gid } = config.mailbox
  if (process.getuid?.() !== 0 || uid === undefined || !process.setuid || !process.setgid || !process.setgroups) return null
  const target = gid ?? uid
  let socketGroup: number | null = null
  let socketAccess = true
  if ('socketPath' in config.supervisor.docker) {
    try {
      const st = fs.statSync(config.supervisor.docker.socketPath)
      socketGroup = st.gid
      // rw for the group (0o060), unless the mail user owns the socket itself.
      socketAccess = st.uid === uid || (st.mode & 0o060) === 0o060
    } catch {
      socketAccess = false
    }
  }
  process.setgroups(socketGroup !== null && socketGroup !== target ? [target, socketGroup] : [target])
  process.setgid(target)
  process.setuid(uid)
  return { uid, gid: target, socketGroup, socketAccess }
}
