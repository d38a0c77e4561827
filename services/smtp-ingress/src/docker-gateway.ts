// TRUSTED_NETWORKS must not hold the Docker bridge gateway: behind Docker's userland proxy every
// client of a published port comes from it, and anyone on the internet could relay.
import { ConfigError, inNetworks, type Config } from '@facteur/config'

/** Throws a ConfigError when TRUSTED_NETWORKS contains the gateway clients may appear to come from. */
export function refuseTrustedGateway(config: Config, gateway: string | null): void {
  if (!gateway || !inNetworks(config.trustedNetworks, gateway)) return
  throw new ConfigError(
    'TRUSTED_NETWORKS',
    config.trustedNetworks.text,
    `networks without ${gateway}, the Docker bridge gateway that clients of a published port appear to come from (userland proxy): everyone could relay. Run the ingress with network_mode: host, or put a proxy in front with PROXY_TRUSTED`,
  )
}
