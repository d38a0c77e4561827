// mailctl queue list|flush
import { openSpool } from '@facteur/spool'
import { register } from './commands.js'

register('queue', {
  list: {
    usage: 'queue list',
    async run(ctx) {
      const spool = await openSpool(ctx.config.spoolDir)
      const entries = await spool.list()
      for (const { id, state, envelope: e } of entries) {
        const when = state === 'queue' && e.nextAttempt > Date.now() ? ` next ${new Date(e.nextAttempt).toISOString()}` : ''
        ctx.out(`${id} ${state} ${e.size}B ${new Date(e.receivedAt).toISOString()} <${e.sender}>${when}`)
        for (const r of e.recipients) ctx.out(`    ${r.status.padEnd(9)} ${r.address}${r.lastError ? `  (${r.lastError})` : ''}`)
      }
      ctx.out(`${entries.length} message(s)`)
      return 0
    },
  },
  flush: {
    usage: 'queue flush',
    async run(ctx) {
      const spool = await openSpool(ctx.config.spoolDir)
      ctx.out(`${await spool.flush()} message(s) due now`)
      return 0
    },
  },
})
