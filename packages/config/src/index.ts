// Configuration of every service: read once from the environment (and `.env`), checked, frozen.
// A wrong value stops start-up with one line naming the variable, the value and what is expected.
export { loadConfig, type Config, type LocalTransport, type MailboxFormat, type UnknownRecipient } from './config.js'
export { ConfigError, EnvReader } from './env.js'
export {
  loadOutbound,
  parseDestination,
  transportFor,
  senderRelayFor,
  tlsPolicyFor,
  dkimKeyFile,
  findDkimKey,
  resolverFor,
  type OutboundConfig,
  type OutboundMode,
  type Destination,
  type TransportRoute,
  type RelayTls,
  type TlsLevel,
} from './outbound.js'
export { loadSubmissionConfig, type SubmissionConfig } from './submission.js'
export { loadFilterConfig, type FilterConfig, type FilterFailure, type SpamEngine } from './filter.js'
export { loadProxyConfig, type ProxyConfig } from './proxy.js'
export { loadSupervisorConfig, healthEndpoint, type SupervisorConfig } from './supervisor.js'
export { parseNetworks, inNetworks, reversedLabels, reverseName, type Network } from './networks.js'
export { loadDnsbl, type Dnsbl } from './dnsbl.js'
export { expandMailboxPath, mailboxBase } from './mailbox-path.js'
export { loadDotenv, exitOnConfigError } from './load.js'
