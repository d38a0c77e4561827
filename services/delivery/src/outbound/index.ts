// Outbound delivery: routes (route.ts), MX lookup (mx.ts), connection pools (pool.ts), one SMTP
// transaction (smtp-client.ts), DKIM signing (dkim.ts), ARC sealing of forwarded copies (arc.ts),
// the reverse-path (reverse-path.ts: SRS), relays' credentials (relay-passwords.ts), put together as attempt's remote transport.
// RFC 5321 §5.1 (MX), RFC 7505 (null MX), RFC 8461 (MTA-STS, mta-sts.ts), RFC 6376 (DKIM),
// RFC 8617 (ARC), RFC 3461 (DSN parameters passed on).
import type { Accounts } from '@facteur/accounts'
import { resolverFor, type Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import type { IsLocal, RemoteTransport } from '../attempt.js'
import { createSigner, dkimKeys } from './dkim.js'
import { createSealer } from './arc.js'
import { createHopFinder } from './mx.js'
import { createPools } from './pool.js'
import { createRouter } from './route.js'
import { createMtaSts } from './mta-sts.js'
import { createRemoteTransport } from './transport.js'
import { createReversePath } from './reverse-path.js'
import { openRelayPasswords } from './relay-passwords.js'

export type Outbound = { transport: RemoteTransport; isLocal: IsLocal; forgetDown(): void; close(): void }

export function createOutbound(deps: { config: Config; logger: Logger; accounts: Accounts }): Outbound {
  const { config, logger, accounts } = deps
  const resolver = resolverFor(config.outbound.dnsServers)
  const finder = createHopFinder(config, resolver)
  const passwords = openRelayPasswords({ configDir: config.configDir, logger })
  const router = createRouter(config, accounts, finder, createMtaSts(config, resolver, logger), passwords)
  const pools = createPools(config)
  const keys = dkimKeys(config)
  return {
    transport: createRemoteTransport({
      logger,
      router,
      pools,
      signer: createSigner(config, logger, keys),
      sealer: createSealer(config, logger, keys),
      localDomains: config.localDomains,
      reversePath: createReversePath(config),
    }),
    isLocal: async (r) => (await router.route(r.address)).kind === 'local',
    forgetDown: () => pools.forgetDown(),
    close: () => pools.close(),
  }
}
