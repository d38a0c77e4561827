// facteur_queue_depth: messages waiting in the spool or being delivered, read when asked.
import { Gauge } from 'prom-client'
import { registry } from '@facteur/metrics'
import type { Spool } from '@facteur/spool'

/** Registers the gauge; the returned function reads the depth (null: no spool). */
export function queueDepthGauge(spool: Spool | null): () => Promise<number | null> {
  const read = async (): Promise<number | null> => (spool ? spool.depth().catch(() => null) : null)
  new Gauge({
    name: 'facteur_queue_depth',
    help: 'Messages in the queue (waiting or being delivered), read from the spool.',
    registers: [registry],
    async collect() {
      const depth = await read()
      if (depth !== null) this.set(depth)
    },
  })
  return read
}
