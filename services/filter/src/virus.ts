// Viruses: the message goes to clamd (CLAMAV_HOST:CLAMAV_PORT) over INSTREAM through the
// clamscan package. clamd decodes MIME itself, so an attachment is scanned as its file.
import { Readable } from 'node:stream'
import NodeClam from 'clamscan'
import type { VirusCheck } from '@facteur/filter-client'
import { withTimeout } from './timeout.js'

export type VirusScanner = {
  scan(message: Buffer): Promise<VirusCheck>
  /** Resolves when clamd answers PING; throws why not. */
  ping(): Promise<void>
}

export function clamavScanner(opts: { host: string; port: number; timeoutMs: number }): VirusScanner {
  let client: Promise<NodeClam> | null = null
  const clam = (): Promise<NodeClam> => {
    client ??= new NodeClam()
      .init({
        preference: 'clamdscan',
        removeInfected: false,
        // clamd over TCP only: no local binary is looked for, no connection is made before a scan.
        clamscan: { path: '', active: false },
        clamdscan: { host: opts.host, port: opts.port, timeout: opts.timeoutMs, localFallback: false, bypassTest: true, path: '' },
      })
      .catch((err: unknown) => {
        client = null
        throw err
      })
    return client
  }

  return {
    async scan(message) {
      try {
        const result = await withTimeout((async () => (await clam()).scanStream(Readable.from([message])))(), opts.timeoutMs, 'clamd')
        if (result.isInfected === true) return { status: 'infected', signatures: result.viruses.length ? result.viruses : ['unknown'] }
        if (result.isInfected === false) return { status: 'clean' }
        return { status: 'error', detail: `clamd: ${result.resultString || 'no answer'}` }
      } catch (err) {
        return { status: 'error', detail: `clamd: ${(err as Error).message}` }
      }
    },
    async ping() {
      const socket = await withTimeout((async () => (await clam()).ping())(), Math.min(opts.timeoutMs, 5000), 'clamd')
      socket.end()
    },
  }
}
