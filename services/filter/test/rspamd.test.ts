import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startRspamd, type Rspamd } from '../../../test/support/rspamd.js'
import { GTUBE } from '../../../test/support/spamd.js'
import { startDns, type Dns } from '../../../test/support/dnsmasq.js'
import { check, health, message, startTestFilter, type TestFilter } from './harness.js'

// Lua rules with known scores keyed on the subject, and one that defers the message the way
// rspamd's greylist module does (a `soft reject` pre-result).
const LUA = `
local function subject_rule(name, score, pattern)
  rspamd_config:register_symbol({
    name = name, score = score,
    callback = function(task)
      local s = task:get_header('Subject') or ''
      return s:find(pattern) ~= nil
    end
  })
end
subject_rule('FACTEUR_SIX', 6.0, 'facteur%-six')
subject_rule('FACTEUR_TEN', 10.0, 'facteur%-ten')
subject_rule('FACTEUR_TWENTY', 20.0, 'facteur%-twenty')
rspamd_config:register_symbol({
  name = 'FACTEUR_DEFER', type = 'prefilter',
  callback = function(task)
    local s = task:get_header('Subject') or ''
    if s:find('facteur%-defer') then task:set_pre_result('soft reject', 'Try again later') end
  end
})
`

let dns: Dns
let rspamdDns: Dns
let rspamd: Rspamd
let filter: TestFilter
before(async () => {
  // Each its own DNS server: rspamd's burst of lookups at start must not slow the filter's.
  dns = await startDns()
  rspamdDns = await startDns()
  rspamd = await startRspamd({ dns: rspamdDns.server, lua: LUA })
  filter = await startTestFilter({
    CLAMAV_ENABLED: 'false',
    SPAM_ENGINE: 'rspamd',
    RSPAMD_URL: rspamd.url,
    SPAM_TAG_SCORE: '5',
    SPAM_JUNK_SCORE: '8',
    SPAM_REJECT_SCORE: '15',
    DNS_SERVERS: dns.server,
  })
})
after(async () => {
  await filter?.close()
  await rspamd?.close()
  await rspamdDns?.close()
  await dns?.close()
})

// A client on loopback: rspamd skips its address-based checks, so only our rules count.
const LOCAL = { ip: '127.0.0.1', helo: 'localhost' }

test('refuses GTUBE: rspamd answers reject', async () => {
  const { verdict } = await check(filter.port, message({ body: GTUBE }), LOCAL)
  assert.equal(verdict.action, 'reject')
  assert.equal(verdict.code, 550)
  assert.equal(verdict.enhanced, '7.1')
  assert.ok(verdict.checks.spam.status === 'scanned' && verdict.checks.spam.action === 'reject')
})

test('accepts ham with the spam headers, engine=rspamd', async () => {
  const { verdict } = await check(filter.port, message(), LOCAL)
  assert.equal(verdict.action, 'accept')
  assert.match(verdict.headers, /^X-Spam-Status: No, score=-?\d+\.\d required=5\.0 engine=rspamd\r$/m)
})

test('a rule worth 6 tags, 10 files as junk, 20 refuses, by our thresholds', async () => {
  assert.equal((await check(filter.port, message({ subject: 'facteur-six' }), LOCAL)).verdict.action, 'tag')
  assert.equal((await check(filter.port, message({ subject: 'facteur-ten' }), LOCAL)).verdict.action, 'junk')
  const twenty = await check(filter.port, message({ subject: 'facteur-twenty' }), LOCAL)
  assert.equal(twenty.verdict.action, 'reject')
  assert.ok(twenty.verdict.checks.spam.status === 'scanned' && twenty.verdict.checks.spam.rules.includes('FACTEUR_TWENTY'))
})

test("honours rspamd's soft reject (greylisting) with 451 4.7.1", async () => {
  const { verdict } = await check(filter.port, message({ subject: 'facteur-defer' }), LOCAL)
  assert.equal(verdict.action, 'tempfail')
  assert.equal(verdict.code, 451)
  assert.equal(verdict.enhanced, '7.1')
})

test("a client behind Docker's userland proxy is not given the gateway's address, which rspamd would treat as local", async () => {
  // rspamd skips its host, SPF, DKIM and DMARC checks for local_addrs (private ranges): the rule
  // on the sender's domain below (remote.example has no A or MX here) is one of those. The rules
  // on the client's own name score nothing: we know of none.
  const gateway = { ip: '172.17.0.1', helo: 'mail.remote.example' }
  const rules = async (envelope: Partial<typeof gateway & { proxied: true }>): Promise<string[]> => {
    const { verdict } = await check(filter.port, message(), envelope)
    return verdict.checks.spam.status === 'scanned' ? verdict.checks.spam.rules : []
  }
  assert.ok(!(await rules(gateway)).includes('HFILTER_FROMHOST_NORES_A_OR_MX'), 'the gateway as the address: local, unchecked')
  const proxied = await rules({ ...gateway, proxied: true })
  assert.ok(proxied.includes('HFILTER_FROMHOST_NORES_A_OR_MX'), proxied.join(' '))
  assert.ok(!proxied.includes('HFILTER_HOSTNAME_UNKNOWN'), proxied.join(' '))
  // A client whose own address has no name is held nameless, as before.
  assert.ok((await rules({ ip: '192.0.2.10' })).includes('HFILTER_HOSTNAME_UNKNOWN'))
})

test('health pings rspamd', async () => {
  const h = await health(filter.port)
  assert.equal(h.body.checks.spam.status, 'ok')
})
