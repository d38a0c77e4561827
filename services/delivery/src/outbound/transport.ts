// The remote half of an attempt: the recipients outside our mailboxes, grouped by route, each
// group sent in one transaction to the first host of its route that takes it (RFC 5321 §5.1:
// the next MX only when a host cannot be reached or will not talk). The message is read once
// and DKIM-signed once, ARC-sealed once for each domain whose aliases forward it; every
// recipient comes back with an outcome.
import type { Logger } from '@facteur/logging'
import type { ActiveMessage, RecipientState } from '@facteur/spool'
import type { RemoteTransport } from '../attempt.js'
import type { Outcome } from '../outcome.js'
import { RouteError } from './mx.js'
import type { Router, Route } from './route.js'
import { signingDomain, type Signer } from './dkim.js'
import type { Sealer } from './arc.js'
import type { Pools } from './pool.js'
import { sendVia, type Transaction } from './smtp-client.js'
import { NO_SRS_SECRET, type ReversePath } from './reverse-path.js'

export function createRemoteTransport(deps: {
  logger: Logger
  router: Router
  pools: Pools
  signer: Signer
  sealer: Sealer
  reversePath: ReversePath
  localDomains: readonly string[]
}): RemoteTransport {
  const { logger, router, pools, signer, sealer, reversePath, localDomains } = deps

  return async (message, recipients) => {
    const env = message.envelope
    const outcomes = new Map<RecipientState, Outcome>()
    const groups = new Map<string, { route: Extract<Route, { kind: 'remote' }>; recipients: RecipientState[] }>()
    // Each copy's reverse-path (a forwarded copy's SRS address) is known before its route: it is
    // what SENDER_RELAY_MAP looks up, as Postfix looks up the sender postsrsd rewrote.
    const reverse = new Map<RecipientState, string | null>()
    for (const r of recipients) {
      const sender = await reversePath(env, r)
      reverse.set(r, sender)
      const route = await router.route(r.address, sender ?? env.sender)
      if (route.kind === 'refused') outcomes.set(r, { status: 'failed', reply: route.reply })
      else if (route.kind === 'local')
        outcomes.set(r, { status: 'deferred', reply: '451 4.3.0 Local recipient routed to the remote transport' })
      else {
        const g = groups.get(route.key) ?? { route, recipients: [] }
        g.recipients.push(r)
        groups.set(route.key, g)
      }
    }
    if (groups.size === 0) return outcomes

    const { message: signed, domain } = await signer.sign(await readAll(message))
    if (domain) logger.debug('signed', { queueId: env.id, domain })
    // A forwarded copy is sealed for the alias's domain; the message is sealed once per domain.
    const sealed = new Map<string, Promise<Buffer>>()
    const messageFor = (r: RecipientState): { seal: string; bytes: Promise<Buffer> } => {
      const seal = forwardedBy(r)
      if (!seal) return { seal: '', bytes: Promise.resolve(signed) }
      if (!sealed.has(seal)) sealed.set(seal, sealer.seal(signed, seal))
      return { seal, bytes: sealed.get(seal)! }
    }
    /** The domain of ours whose alias sent `r` elsewhere; null for a recipient named as it is. */
    const forwardedBy = (r: RecipientState): string | null => {
      if (!r.original || r.original.toLowerCase() === r.address.toLowerCase()) return null
      const at = r.original.lastIndexOf('@')
      return at < 0 ? null : signingDomain(localDomains, r.original.slice(at + 1).toLowerCase())
    }

    await Promise.all(
      [...groups.values()].map(async ({ route, recipients: group }) => {
        let hops
        try {
          hops = await route.hops()
        } catch (err) {
          if (!(err instanceof RouteError)) throw err
          for (const r of group) outcomes.set(r, { status: err.permanent ? 'failed' : 'deferred', reply: err.reply })
          return
        }
        // RFC 3461 §4.1, §4.2: NOTIFY and ORCPT are per recipient, nodemailer's per transaction,
        // as the reverse-path (a forwarded copy's SRS address): one transaction per set of values
        // (recipients with the sender's own reverse-path and neither DSN value share one), and as
        // the ARC seal, which names the forwarding alias's domain.
        const byTransaction = new Map<
          string,
          { sender: string; notify?: string[]; orcpt?: string; bytes: Promise<Buffer>; rcpts: RecipientState[] }
        >()
        for (const r of group) {
          const sender = reverse.get(r) ?? null
          if (sender === null) {
            outcomes.set(r, { status: 'deferred', reply: NO_SRS_SECRET })
            continue
          }
          const orcpt = orcptOf(r)
          const { seal, bytes } = messageFor(r)
          const key = `${sender} ${r.notify?.join(',') ?? ''} ${orcpt ?? ''} ${seal}`
          const g = byTransaction.get(key) ?? { sender, notify: r.notify, orcpt, bytes, rcpts: [] }
          g.rcpts.push(r)
          byTransaction.set(key, g)
        }
        for (const { sender, notify, orcpt, bytes, rcpts } of byTransaction.values()) {
          const tx: Transaction = {
            sender,
            recipients: rcpts,
            message: await bytes,
            dsn: env.dsn || notify || orcpt ? { ret: env.dsn?.ret, envid: env.dsn?.envid, notify, orcpt } : undefined,
          }
          let last = '451 4.4.1 No host to try'
          let delivered = false
          for (const hop of hops) {
            const result = await sendVia(pools, hop, hop.session ?? route.session, tx)
            if (result.kind === 'next') {
              last = result.reply
              logger.info('host failed, trying the next', { queueId: env.id, host: hop.name, address: hop.address, reply: result.reply })
              continue
            }
            for (const r of rcpts)
              outcomes.set(r, result.outcomes.get(r) ?? { status: 'deferred', reply: '451 4.4.0 No reply for this recipient' })
            delivered = true
            break
          }
          if (!delivered) for (const r of rcpts) outcomes.set(r, { status: 'deferred', reply: last })
        }
      }),
    )
    return outcomes
  }
}

/**
 * RFC 3461 §5.2.1 (d): the ORCPT the client gave goes on to a next hop that offers DSN. Without
 * one, the address the client named in RCPT TO goes on when it is not the one we send to (an
 * alias was expanded), as the RFC lets a relay add it; the same address would tell the next hop
 * nothing, and would cost a transaction of its own per recipient.
 */
function orcptOf(r: RecipientState): string | undefined {
  if (r.orcpt) return r.orcpt
  return r.original && r.original.toLowerCase() !== r.address.toLowerCase() ? `rfc822;${r.original}` : undefined
}

async function readAll(message: ActiveMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of message.open()) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}
