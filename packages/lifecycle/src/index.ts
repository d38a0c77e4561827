// A service process's life: announce each bound port (a `listening` log line, and a message to
// the supervisor in process mode), and a graceful stop on SIGTERM.
export { announce, onShutdown, processAlive, type Announcement } from './lifecycle.js'
