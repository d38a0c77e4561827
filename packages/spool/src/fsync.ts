// Directory fsync with group commit: every caller is covered by an fsync that started after
// its call, and callers that arrive while one runs share the next one.
import fs from 'node:fs'
import { fsyncFd } from './file.js'

export class DirSyncer {
  private running: Promise<void> | null = null
  private next: Promise<void> | null = null

  constructor(private readonly dir: string) {}

  sync(): Promise<void> {
    if (this.next) return this.next
    if (!this.running) return (this.running = this.run().finally(() => (this.running = null)))
    const after = this.running
    this.next = after
      .catch(() => undefined)
      .then(() => {
        this.next = null
        return (this.running = this.run().finally(() => (this.running = null)))
      })
    return this.next
  }

  private async run(): Promise<void> {
    const fd = fs.openSync(this.dir, 'r')
    try {
      await fsyncFd(fd)
    } finally {
      fs.closeSync(fd)
    }
  }
}
