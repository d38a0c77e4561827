// Users and aliases kept in CONFIG_DIR: `users` in Dovecot's passwd-file format and `aliases`
// (`alias@domain: target, target`). Re-read when either file changes, also by rename. And the
// addresses forwarded mail leaves with (SRS, its secret in CONFIG_DIR/srs.secret).
export { openAccounts, parseRegexpAliases, REGEXP_ALIASES_FILE, type Accounts, type Expansion } from './accounts.js'
export { parseUsers, formatUsers, userQuota, withQuota, type UserEntry } from './users-file.js'
export { parseAliases, formatAliases, type AliasTable } from './aliases-file.js'
export { hashPassword, verifyPassword } from './password.js'
export { splitAddress, normalizeAddress, isDomainEntry } from './address.js'
export { FULL_MAILBOXES_FILE, parseFullMailboxes } from './full-mailboxes.js'
export { createSrs, isSrsLocal, SrsError, SRS_MAX_AGE_DAYS, type Srs } from './srs.js'
export { ensureSrsSecret, openSrs, parseSrsSecrets, SRS_SECRET_FILE } from './srs-secrets.js'
