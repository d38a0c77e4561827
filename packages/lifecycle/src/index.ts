// A service process's life: announce each bound port (a `listening` log line, and a message to
// the supervisor in process mode), a graceful stop on SIGTERM, and whether another process still
// runs (a stale lock's owner).
export { announce, onShutdown, processAlive, type Announcement } from './lifecycle.js'
