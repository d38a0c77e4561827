import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig, expandMailboxPath, inNetworks, reversedLabels, reverseName, ConfigError } from '@facteur/config'

const base = { MAIL_DOMAIN: 'ours.example' }

test('defaults follow MAIL_DOMAIN', () => {
  const c = loadConfig(base)
  assert.equal(c.hostname, 'mail.ours.example')
  assert.deepEqual(c.localDomains, ['ours.example'])
  assert.equal(c.postmaster, 'postmaster@ours.example')
  assert.equal(c.mailbox.pathTemplate, '/var/mail/%u')
  assert.equal(c.smtp.port, 25)
  assert.ok(Object.isFrozen(c.smtp))
})

test('a bad value names the variable, the value and what is expected', () => {
  assert.throws(() => loadConfig({ ...base, SMTP_PORT: '25x' }), {
    message: 'SMTP_PORT="25x" is not valid: expected a port number from 0 to 65535 (0 picks a free port)',
  })
  assert.throws(() => loadConfig({ ...base, SMTP_PORT: '70000' }), ConfigError)
  assert.throws(() => loadConfig({}), { message: 'MAIL_DOMAIN is not set: expected a value' })
  assert.throws(() => loadConfig({ ...base, MAILBOX_FORMAT: 'mh' }), /MAILBOX_FORMAT="mh" .* one of mbox, maildir/)
  assert.throws(() => loadConfig({ ...base, MESSAGE_SIZE_LIMIT: 'big' }), /MESSAGE_SIZE_LIMIT/)
  assert.throws(() => loadConfig({ ...base, TRUSTED_NETWORKS: '10.0.0.0/33' }), /TRUSTED_NETWORKS="10.0.0.0\/33"/)
  assert.throws(() => loadConfig({ ...base, UNKNOWN_RECIPIENT: 'bounce' }), /UNKNOWN_RECIPIENT/)
  assert.throws(() => loadConfig({ ...base, ALWAYS_BCC: 'archive' }), /ALWAYS_BCC/)
  assert.equal(loadConfig({ ...base, ALWAYS_BCC: 'Archive@Ours.Example' }).alwaysBcc, 'archive@ours.example')
  assert.equal(loadConfig(base).alwaysBcc, null)
  assert.equal(loadConfig(base).dsnLanguage, 'en')
  assert.equal(loadConfig({ ...base, DSN_LANGUAGE: 'fr' }).dsnLanguage, 'fr')
  assert.throws(() => loadConfig({ ...base, DSN_LANGUAGE: 'de' }), /DSN_LANGUAGE="de" .* one of en, fr/)
  assert.deepEqual(loadConfig(base).quotaWarnings, [80, 95])
  assert.deepEqual(loadConfig({ ...base, QUOTA_WARNING: '95%, 50,80' }).quotaWarnings, [50, 80, 95])
  assert.deepEqual(loadConfig({ ...base, QUOTA_WARNING: 'off' }).quotaWarnings, [])
  for (const bad of ['100', '0,50', 'half']) assert.throws(() => loadConfig({ ...base, QUOTA_WARNING: bad }), /QUOTA_WARNING/, bad)
  assert.deepEqual(loadConfig({ ...base, SRS_EXCLUDE_DOMAINS: 'Partner.Example, .corp.example' }).srsExclude, [
    'partner.example',
    '.corp.example',
  ])
  assert.throws(() => loadConfig({ ...base, SRS_EXCLUDE_DOMAINS: 'not a domain!' }), /SRS_EXCLUDE_DOMAINS/)
  assert.equal(loadConfig(base).supervisor.reportIntervalMs, null)
  assert.equal(loadConfig({ ...base, REPORT_INTERVAL: 'daily' }).supervisor.reportIntervalMs, 86_400_000)
  assert.equal(loadConfig({ ...base, REPORT_INTERVAL: '12h' }).supervisor.reportIntervalMs, 12 * 3_600_000)
  assert.equal(loadConfig(base).supervisor.reportRecipient, 'postmaster@ours.example')
  for (const bad of ['monthly', '10ms']) assert.throws(() => loadConfig({ ...base, REPORT_INTERVAL: bad }), /REPORT_INTERVAL/, bad)
  assert.throws(() => loadConfig({ ...base, REPORT_RECIPIENT: 'boss' }), /REPORT_RECIPIENT/)
  assert.equal(loadConfig(base).clientPtrCheck, 'off')
  assert.throws(() => loadConfig({ ...base, SMTP_CLIENT_PTR_CHECK: 'yes' }), /SMTP_CLIENT_PTR_CHECK/)
  assert.throws(() => loadConfig({ ...base, SMTP_TIMEOUT: '0' }), {
    message: 'SMTP_TIMEOUT="0" is not valid: expected a duration of at least 1s, like 5m',
  })
  assert.throws(() => loadConfig({ ...base, SMTP_MIN_DATA_RATE: '0' }), /SMTP_MIN_DATA_RATE="0" .* a whole number from 1 to/)
})

test('slow clients: SMTP_TIMEOUT 5 minutes and SMTP_MIN_DATA_RATE 500 bytes a second by default (Postfix smtpd_min_data_rate)', () => {
  const c = loadConfig(base)
  assert.equal(c.smtp.timeoutMs, 300_000)
  assert.equal(c.smtp.minDataRate, 500)
  assert.equal(loadConfig({ ...base, SMTP_TIMEOUT: '5s', SMTP_MIN_DATA_RATE: '2000' }).smtp.minDataRate, 2000)
})

test("abusive clients: 50 sessions an address, errors slowed past 10 and cut at 20, as Postfix's smtpd defaults", () => {
  const c = loadConfig(base)
  assert.deepEqual([c.smtp.maxClientsPerIp, c.smtp.softErrorLimit, c.smtp.hardErrorLimit, c.smtp.errorSleepMs], [50, 10, 20, 1000])
  const off = loadConfig({ ...base, SMTP_MAX_CLIENTS_PER_IP: '0', SMTP_SOFT_ERROR_LIMIT: '0', SMTP_HARD_ERROR_LIMIT: '0' }).smtp
  assert.deepEqual([off.maxClientsPerIp, off.softErrorLimit, off.hardErrorLimit], [0, 0, 0])
  assert.throws(() => loadConfig({ ...base, SMTP_ERROR_SLEEP: '2m' }), {
    message: 'SMTP_ERROR_SLEEP="2m" is not valid: expected a duration of at most 60s, like 1s',
  })
  assert.throws(() => loadConfig({ ...base, SMTP_MAX_CLIENTS_PER_IP: '-1' }), /SMTP_MAX_CLIENTS_PER_IP="-1"/)
})

test('a template without %d is refused when there are several local domains', () => {
  assert.throws(
    () => loadConfig({ ...base, LOCAL_DOMAINS: 'a.example,b.example', MAILBOX_PATH: '/var/mail/%u' }),
    /MAILBOX_PATH="\/var\/mail\/%u" is not valid: expected a template holding %d or %e/,
  )
  const c = loadConfig({ ...base, LOCAL_DOMAINS: 'a.example,b.example' })
  assert.equal(c.mailbox.pathTemplate, '/var/mail/%d/%u')
})

test('mailbox paths expand and never leave their base directory', () => {
  assert.equal(expandMailboxPath('/var/mail/%u', 'Alice', 'ours.example'), '/var/mail/alice')
  assert.equal(expandMailboxPath('/home/%u/.local/share/courriels', 'bob', 'x'), '/home/bob/.local/share/courriels')
  assert.equal(expandMailboxPath('/var/mail/%d/%u', 'bob', 'Ours.Example'), '/var/mail/ours.example/bob')
  assert.equal(expandMailboxPath('/var/mail/%u', '..', 'x'), null)
  assert.equal(expandMailboxPath('/var/mail/%u', 'a/../../etc', 'x'), null)
  assert.equal(expandMailboxPath('/var/mail/%u', 'a\0b', 'x'), null)
  assert.equal(expandMailboxPath('/var/mail/%e', 'a', '..'), null)
  // RFC 5321 §4.1.2: no leading dot (hidden names: `.lock` files, Maildir++ folders).
  assert.equal(expandMailboxPath('/var/mail/%u', '.hidden', 'x'), null)
  assert.equal(expandMailboxPath('/var/mail/%u', '.', 'x'), null)
  assert.equal(expandMailboxPath('/var/mail/%u', 'a.b', 'x'), '/var/mail/a.b')
})

test('trusted networks match IPv4, IPv6 and IPv4-mapped clients', () => {
  const c = loadConfig({ ...base, TRUSTED_NETWORKS: '192.168.1.0/24, 2001:db8::/32 127.0.0.2' })
  assert.ok(inNetworks(c.trustedNetworks, '192.168.1.7'))
  assert.ok(inNetworks(c.trustedNetworks, '::ffff:192.168.1.7'))
  assert.ok(inNetworks(c.trustedNetworks, '2001:db8::1'))
  assert.ok(inNetworks(c.trustedNetworks, '127.0.0.2'))
  assert.ok(!inNetworks(c.trustedNetworks, '127.0.0.1'))
  assert.ok(!inNetworks(loadConfig(base).trustedNetworks, '127.0.0.1'))
})

test('SMTP_DNSBL takes zones with the answers that count, as Postfix writes them; a listing is in 127/8', () => {
  assert.deepEqual(loadConfig(base).dnsbl, [])
  const [zen, any] = loadConfig({ ...base, SMTP_DNSBL: 'zen.spamhaus.org=127.0.0.[2..4;9..11], BL.Example.' }).dnsbl
  assert.deepEqual([zen.zone, any.zone], ['zen.spamhaus.org', 'bl.example'])
  const listed = (answers: string[], zone: typeof zen) => answers.filter((a) => zone.lists(a))
  assert.deepEqual(listed(['127.0.0.2', '127.0.0.4', '127.0.0.5', '127.0.0.10', '127.0.1.2', '127.0.0.12'], zen), [
    '127.0.0.2',
    '127.0.0.4',
    '127.0.0.10',
  ])
  // Unfiltered: anything in 127/8 but Spamhaus's refusals (127.255.255.x); never a rewritten NXDOMAIN.
  assert.deepEqual(listed(['127.0.0.2', '127.1.2.3', '127.255.255.254', '192.0.2.1', '::1'], any), ['127.0.0.2', '127.1.2.3'])
  assert.equal(loadConfig({ ...base, SMTP_DNSBL: 'bl.example=127.255.255.254' }).dnsbl[0].lists('127.255.255.254'), false)
  // postscreen_dnsbl_sites' weights: 1 by default, negative for an allowlist, after the answers.
  const weighted = loadConfig({ ...base, SMTP_DNSBL: 'zen.spamhaus.org*3, list.dnswl.org=127.0.[0..255].[1..3]*-5, bl.example' })
  assert.deepEqual(
    weighted.dnsbl.map((z) => [z.zone, z.weight]),
    [
      ['zen.spamhaus.org', 3],
      ['list.dnswl.org', -5],
      ['bl.example', 1],
    ],
  )
  assert.equal(weighted.dnsbl[1].lists('127.0.10.2'), true)
  assert.equal(weighted.dnsbl[1].lists('127.0.10.0'), false)
  assert.equal(weighted.dnsblThreshold, 1)
  assert.equal(loadConfig({ ...base, SMTP_DNSBL_THRESHOLD: '3' }).dnsblThreshold, 3)
  assert.throws(() => loadConfig({ ...base, SMTP_DNSBL_THRESHOLD: '0' }), /SMTP_DNSBL_THRESHOLD/)

  for (const bad of [
    'bl.example=127.0.0',
    'bl.example=127.0.0.[4..2]',
    'bl.example=127.0.0.256',
    'bl.example=',
    'bl.example*0',
    'bl.example*x',
    '-bad-.example',
    'bl.example=a.b.c.d',
  ])
    assert.throws(
      () => loadConfig({ ...base, SMTP_DNSBL: bad }),
      (err: unknown) => err instanceof ConfigError && err.variable === 'SMTP_DNSBL',
      bad,
    )
})

test('addresses reverse into in-addr.arpa and ip6.arpa names (RFC 3596 §2.5), and into DNSBL labels', () => {
  assert.equal(reverseName('192.0.2.1'), '1.2.0.192.in-addr.arpa')
  assert.equal(reverseName('2001:db8::1'), `1.${'0.'.repeat(23)}8.b.d.0.1.0.0.2.ip6.arpa`)
  assert.equal(reversedLabels('::ffff:192.0.2.1'), '1.2.0.192')
  assert.equal(reversedLabels('2001:db8:1:2:3:4:5:6'), '6.0.0.0.5.0.0.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2')
  // An IPv6 address written with an IPv4 tail (NAT64) is IPv6, its tail two groups.
  assert.equal(reverseName('64:ff9b::192.0.2.1'), `1.0.2.0.0.0.0.c.${'0.'.repeat(16)}b.9.f.f.4.6.0.0.ip6.arpa`)
  assert.equal(reverseName('::ffff:192.0.2.1'), '1.2.0.192.in-addr.arpa')
})

test('GREYLIST_DELAY is off by default and at most a day', () => {
  assert.equal(loadConfig(base).greylistDelayMs, 0)
  assert.equal(loadConfig({ ...base, GREYLIST_DELAY: '5m' }).greylistDelayMs, 300_000)
  assert.throws(
    () => loadConfig({ ...base, GREYLIST_DELAY: '3d' }),
    /^ConfigError: GREYLIST_DELAY="3d" is not valid: expected a duration of at most 1d/,
  )
})

test('SHARED_CLIENT_ADDRESSES match as networks, and may not overlap TRUSTED_NETWORKS (everyone behind them could relay)', () => {
  const c = loadConfig({ ...base, SHARED_CLIENT_ADDRESSES: '10.42.0.0/16, 2001:db8::7', TRUSTED_NETWORKS: '192.168.1.0/24' })
  assert.ok(inNetworks(c.sharedClients, '10.42.3.4'))
  assert.ok(inNetworks(c.sharedClients, '2001:db8::7'))
  assert.ok(!inNetworks(c.sharedClients, '192.168.1.5'))
  for (const [shared, trusted] of [
    ['10.42.0.0/16', '10.0.0.0/8'],
    ['10.0.0.0/8', '10.42.1.0/24'],
    ['192.168.1.9', '192.168.1.0/24'],
  ])
    assert.throws(
      () => loadConfig({ ...base, SHARED_CLIENT_ADDRESSES: shared, TRUSTED_NETWORKS: trusted }),
      (err: unknown) => err instanceof ConfigError && err.variable === 'SHARED_CLIENT_ADDRESSES' && /is in both/.test(err.message),
      `${shared} / ${trusted}`,
    )
})

test('LOCAL_TRANSPORT: the mailboxes, or an LMTP server (port 24 by default); MAILBOX_QUOTA is then the server’s', () => {
  assert.deepEqual(loadConfig(base).localTransport, { kind: 'mailbox' })
  assert.deepEqual(loadConfig({ ...base, LOCAL_TRANSPORT: 'lmtp:dovecot' }).localTransport, { kind: 'lmtp', host: 'dovecot', port: 24 })
  assert.deepEqual(loadConfig({ ...base, LOCAL_TRANSPORT: 'lmtp:[::1]:2424' }).localTransport, { kind: 'lmtp', host: '::1', port: 2424 })
  assert.throws(
    () => loadConfig({ ...base, LOCAL_TRANSPORT: 'lmtp:' }),
    /LOCAL_TRANSPORT="lmtp:" is not valid: expected mailbox, or lmtp:HOST\[:PORT\]/,
  )
  assert.throws(() => loadConfig({ ...base, LOCAL_TRANSPORT: 'lmtp:dovecot:0' }), /LOCAL_TRANSPORT/)
  assert.equal(loadConfig({ ...base, MAILBOX_QUOTA: '2G' }).mailbox.quota, 2 * 1024 ** 3)
  assert.throws(
    () => loadConfig({ ...base, LOCAL_TRANSPORT: 'lmtp:dovecot', MAILBOX_QUOTA: '1G' }),
    /MAILBOX_QUOTA="1G" is not valid: expected 0 with LOCAL_TRANSPORT=lmtp/,
  )
  assert.equal(loadConfig({ ...base, SMTP_HELO_CHECK: 'fqdn' }).heloCheck, 'fqdn')
  assert.throws(() => loadConfig({ ...base, SMTP_HELO_CHECK: 'strict' }), /SMTP_HELO_CHECK="strict"/)
})

test('SRS_DOMAIN: MAIL_DOMAIN by default (the first of LOCAL_DOMAINS when it is not one), another local domain, or none', () => {
  assert.equal(loadConfig(base).srsDomain, base.MAIL_DOMAIN)
  assert.equal(loadConfig({ ...base, SRS_DOMAIN: '' }).srsDomain, base.MAIL_DOMAIN)
  assert.equal(loadConfig({ ...base, LOCAL_DOMAINS: 'a.example, b.example', SRS_DOMAIN: 'B.example' }).srsDomain, 'b.example')
  assert.equal(loadConfig({ ...base, LOCAL_DOMAINS: 'a.example, b.example' }).srsDomain, 'a.example')
  assert.equal(loadConfig({ ...base, SRS_DOMAIN: 'none' }).srsDomain, null)
  assert.throws(
    () => loadConfig({ ...base, SRS_DOMAIN: 'elsewhere.example' }),
    /SRS_DOMAIN="elsewhere.example" is not valid: expected one of LOCAL_DOMAINS/,
  )
})
