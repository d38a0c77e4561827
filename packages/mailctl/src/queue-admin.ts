// mailctl queue delete|hold|release ID...: the spool's own moves (see packages/spool/README.md).
// A message a delivery worker holds at that moment (active/) is waited for, briefly. `delete`
// also takes ALL (postsuper -d ALL) or --from=ADDRESS, every message from one sender (`<>`:
// bounces), to purge what a compromised account queued. `show ID` prints a message with its
// envelope (postcat -q).
import { openSpool, type Spool } from '@facteur/spool'
import { flagValue, register, UsageError, type Context } from './commands.js'

const WAIT_MS = 10_000

async function eachId(
  ctx: Context,
  verb: string,
  act: (spool: Spool, id: string) => Promise<boolean>,
  select?: (spool: Spool) => Promise<string[] | null>,
): Promise<number> {
  const spool = await openSpool(ctx.config.spoolDir)
  const selected = (await select?.(spool)) ?? null
  const ids = selected ?? ctx.args.map((a) => a.toUpperCase())
  if (!selected && ids.length === 0) throw new UsageError(`expected queue ids: mailctl queue ${verb} ID [ID...] (see mailctl queue list)`)
  let missing = 0
  for (const id of ids) {
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
  if (selected && ids.length === 0) ctx.out('no message matched')
  return missing ? 1 : 0
}

/** ALL, or --from=ADDRESS: the ids to delete; null when the arguments are ids. */
async function deletion(ctx: Context, spool: Spool): Promise<string[] | null> {
  const from = flagValue(ctx, 'from')
  const all = ctx.args.includes('ALL')
  if (from === undefined && !all) return null
  if (ctx.args.length !== (all ? 1 : 0) || (all && from !== undefined))
    throw new UsageError('expected ALL, --from=ADDRESS or queue ids, not a mix')
  const sender = from === '<>' ? '' : from?.toLowerCase()
  return (await spool.list()).filter((e) => all || e.envelope.sender.toLowerCase() === sender).map((e) => e.id)
}

register('queue', {
  delete: {
    usage: 'queue delete ID [ID...] | ALL | --from=ADDRESS',
    run: (ctx) =>
      eachId(
        ctx,
        'delete',
        (s, id) => s.remove(id),
        (s) => deletion(ctx, s),
      ),
  },
  show: {
    usage: 'queue show ID',
    async run(ctx) {
      const id = ctx.args[0]?.toUpperCase()
      if (!id || ctx.args.length !== 1) throw new UsageError('expected one queue id: mailctl queue show ID (see mailctl queue list)')
      const spool = await openSpool(ctx.config.spoolDir)
      const entry = (await spool.list()).find((e) => e.id === id)
      const content = entry ? await spool.content(id) : null
      if (!entry || !content) {
        ctx.out(`${id}: no such message`)
        return 1
      }
      const e = entry.envelope
      ctx.out(`*** ENVELOPE: ${id} ${entry.state}, received ${new Date(e.receivedAt).toISOString()} from ${e.client.ip}`)
      ctx.out(`sender: <${e.sender}>`)
      for (const r of e.recipients) ctx.out(`recipient: <${r.address}> ${r.status}${r.lastError ? ` (${r.lastError})` : ''}`)
      ctx.out('*** MESSAGE (as it will be delivered: the fields added on the way, then the stored bytes)')
      ctx.out(((e.prepend ?? '') + content.toString('latin1')).replace(/\r\n/g, '\n').replace(/\n$/, ''))
      return 0
    },
  },
  hold: { usage: 'queue hold ID [ID...]', run: (ctx) => eachId(ctx, 'hold', (s, id) => s.hold(id)) },
  release: { usage: 'queue release ID [ID...]', run: (ctx) => eachId(ctx, 'release', (s, id) => s.release(id)) },
})
