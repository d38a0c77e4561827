// The content filter's contract and its callers' side: the envelope and verdict types of the
// filter's HTTP API, the call itself, and reception's inspect hook that applies a verdict
// (FILTER_FAILURE when the filter cannot answer). RFC 8601 §5 (forged Authentication-Results).
export type { FilterEnvelope, Verdict, VerdictAction, VirusCheck, SpamCheck, AuthCheck, HeaderRemoval } from './verdict.js'
export { ENVELOPE_HEADER } from './verdict.js'
export { checkMessage, encodeEnvelope, FilterUnavailable } from './client.js'
export { filterInspector, applyVerdict, JUNK_FOLDER, type FilterSettings, type FilterOutcome, type InspectedDraft } from './inspect.js'
export { authservId, claimsAuthservId } from './auth-results.js'
