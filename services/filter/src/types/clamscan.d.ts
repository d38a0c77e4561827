// The part of clamscan 2.x (no types of its own) the filter uses: clamd over TCP, INSTREAM, PING.
declare module 'clamscan' {
  import type { Readable } from 'node:stream'
  import type { Socket } from 'node:net'

  type ScanResult = { isInfected: boolean | null; viruses: string[]; file: string | null; resultString: string; timeout: boolean }
  type Options = {
    preference?: 'clamdscan' | 'clamscan'
    removeInfected?: boolean
    debugMode?: boolean
    clamscan?: { path?: string; active?: boolean }
    clamdscan?: {
      host?: string
      port?: number
      timeout?: number
      localFallback?: boolean
      bypassTest?: boolean
      path?: string
      active?: boolean
    }
  }
  class NodeClam {
    init(options?: Options): Promise<NodeClam>
    scanStream(stream: Readable): Promise<ScanResult>
    ping(): Promise<Socket>
  }
  export default NodeClam
}
