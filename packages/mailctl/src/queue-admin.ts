// mailctl queue delete|hold|release ID...: the spool's own moves (see packages/spool/README.md).
// A message a delivery worker holds at that moment (active/) is waited for, briefly.
import { openSpool, type Spool } from '@facteur/spool'
import { register, UsageError, type Context } from './commands.js'

const WAIT_MS = 10_000

async function eachId(ctx: Context, verb: string, act: (spool: Spool, id: string) => Promise<boolean>): Promise<number> {
  if (ctx.args.length === 0) throw new UsageError(`expected queue ids: mailctl queue ${verb} ID [ID...] (see mailctl queue list)`)
  const spool = await openSpool(ctx.config.spoolDir)
  let missing = 0
  for (const id of ctx.args.map((a) => a.toUpperCase())) {
    const deadline = Date.now() + WAIT_MS
    let done = await act(spool, id)
    // Being delivered right now: it comes back to queue/ (or leaves the spool) within an attempt.
    while (!done && Date.now() < deadline && (await spool.list()).some((e) => e.id === id && e.state === 'active')) {
      await new Promise((r) => setTimeout(r, 200))
      done = await act(spool, id)
    }
    if (done) ctx.out(`${verb === 'delete' ? 'deleted' : verb === 'hold' ? 'held' : 'released'} ${id}`)
    else {
      missing++
      ctx.out(`${id}: no such message${verb === 'release' ? ' on hold' : verb === 'hold' ? ' waiting in the queue' : ''}`)
    }
  }
  return missing ? 1 : 0
}

register('queue', {
  delete: { usage: 'queue delete ID [ID...]', run: (ctx) => eachId(ctx, 'delete', (s, id) => s.remove(id)) },
  hold: { usage: 'queue hold ID [ID...]', run: (ctx) => eachId(ctx, 'hold', (s, id) => s.hold(id)) },
  release: { usage: 'queue release ID [ID...]', run: (ctx) => eachId(ctx, 'release', (s, id) => s.release(id)) },
})
