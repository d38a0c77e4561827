// The access tables (CONFIG_DIR/client_access, sender_access, recipient_access): Postfix's source
// format and lookup order, the replies, and a table edited while the service runs.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { createLogger } from '@facteur/logging'
import { SmtpError } from '@facteur/smtp-error'
import { lookupAddress, lookupClient, openAccess, parseAccess } from '@facteur/reception'

const action = (a: ReturnType<typeof lookupAddress>): string =>
  !a ? 'none' : a.kind === 'refuse' ? `${a.code} ${a.enhanced} ${a.text}` : a.kind

test('reads the actions Postfix writes, and names each line it cannot use', () => {
  const { table, problems } = parseAccess(
    [
      '# comment',
      'spam.example REJECT',
      'Slow.Example   DEFER  try later',
      'bad.example 550 5.7.0 Go away',
      'odd.example 421 4.7.0',
      'old.example 550 No longer here',
      'friend.example OK',
      'exception.friend.example DUNNO',
      'sub.example REJECT first',
      '  continued on the next line',
      'hold.example HOLD',
      'discard.example discard',
      'lonely.example',
      'bad key.example REJECT',
      'x.example 450 5.1.1 the class follows the code',
    ].join('\n'),
    'sender',
  )
  const get = (k: string): string => action(table.keys.get(k))
  assert.equal(get('spam.example'), '554 7.1 Access denied')
  assert.equal(get('slow.example'), '450 7.1 try later')
  assert.equal(get('bad.example'), '550 7.0 Go away')
  assert.equal(get('odd.example'), '421 7.0 Access denied')
  assert.equal(get('old.example'), '550 7.1 No longer here')
  assert.equal(get('friend.example'), 'ok')
  assert.equal(get('exception.friend.example'), 'dunno')
  assert.equal(get('sub.example'), '554 7.1 first continued on the next line')
  assert.equal(get('x.example'), '450 1.1 the class follows the code')
  assert.deepEqual(
    problems.map((p) => p.line),
    [11, 12, 13, 14],
  )
  assert.match(problems[0].reason, /"HOLD" is not an action Facteur has/)
  assert.match(problems[2].reason, /no action/)
  assert.match(problems[3].reason, /"key.example" is not an action Facteur has/)
})

test('looks addresses up as Postfix does: address, domain, parent domains, user@; extension and null sender (a BOM and CRLF ends ignored)', () => {
  const { table } = parseAccess(
    [
      '\uFEFFalice@ours.example OK',
      'ours.example REJECT domain',
      '.sub.ours.example REJECT subdomain',
      'postmaster@ 450 any domain',
      'carol@x.example 550 carol',
      'x.example DUNNO',
      'example 550 top',
      '<> REJECT null',
    ].join('\r\n'),
    'sender',
  )
  const find = (a: string): string => action(lookupAddress(table, a, '+'))
  assert.equal(find('Alice@Ours.Example'), 'ok')
  assert.equal(find('alice+list@ours.example'), 'ok', 'without the extension')
  assert.equal(find('bob@ours.example'), '554 7.1 domain')
  assert.equal(find('bob@a.sub.ours.example'), '554 7.1 subdomain')
  assert.equal(find('bob@other.ours.example'), '554 7.1 domain', 'a domain key matches its subdomains')
  assert.equal(find('postmaster@elsewhere.test'), '450 7.1 any domain')
  assert.equal(find('carol+x@x.example'), '550 7.1 carol')
  assert.equal(find('dave@x.example'), 'dunno', 'DUNNO stops the lookup before the parent domain')
  assert.equal(find('dave@y.example'), '550 7.1 top')
  assert.equal(find(''), '554 7.1 null')
  assert.equal(find('nobody@unlisted.test'), 'none')
})

test('looks clients up by address, IPv4 octets, then CIDR networks in file order; names are refused', () => {
  const { table, problems } = parseAccess(
    [
      '192.0.2.1 OK',
      '192.0.2 REJECT net',
      '198.51.100.0/25 550 first',
      '198.51.100.0/24 OK',
      '2001:DB8:0::1 REJECT six',
      '2001:db8::/32 DEFER',
      'mail.example.com REJECT',
      '300.1.2 REJECT',
    ].join('\n'),
    'client',
  )
  const find = (ip: string): string => action(lookupClient(table, ip))
  assert.equal(find('192.0.2.1'), 'ok')
  assert.equal(find('::ffff:192.0.2.1'), 'ok')
  assert.equal(find('192.0.2.9'), '554 7.1 net')
  assert.equal(find('198.51.100.5'), '550 7.1 first')
  assert.equal(find('198.51.100.200'), 'ok')
  assert.equal(find('2001:db8::1'), '554 7.1 six')
  assert.equal(find('2001:db8::2'), '450 7.1 Access denied')
  assert.equal(find('203.0.113.1'), 'none')
  assert.deepEqual(
    problems.map((p) => p.line),
    [7, 8],
  )
  assert.match(problems[0].reason, /client names are not looked up/)
})

let dir: string
before(async () => (dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-access-'))))
after(() => fs.rm(dir, { recursive: true, force: true }))

test('decides client, then sender, then recipient, with Postfix replies; an edited table is read again', async () => {
  const stream = new PassThrough()
  const logger = createLogger({ service: 'test', level: 'warn', format: 'json', stream })
  const access = openAccess({ configDir: dir, delimiter: '+', logger })
  await access.refresh()
  assert.equal(access.decide('192.0.2.1', 'a@b.example', 'c@ours.example'), null, 'no tables: nothing decided')

  await fs.writeFile(path.join(dir, 'client_access'), '192.0.2.1 DUNNO\n192.0.2.2 REJECT\n')
  await fs.writeFile(path.join(dir, 'sender_access'), 'friend.example OK\nspam.example REJECT\nbogus\n')
  await fs.writeFile(path.join(dir, 'recipient_access'), 'gone@ours.example 550 5.1.6 moved away\n')
  await access.refresh()
  const reply = (d: ReturnType<typeof access.decide>): string | null => (d instanceof SmtpError ? d.reply : d)
  assert.equal(
    reply(access.decide('192.0.2.2', 'a@friend.example', 'c@ours.example')),
    '554 5.7.1 <unknown[192.0.2.2]>: Client host rejected: Access denied',
  )
  assert.equal(reply(access.decide('192.0.2.1', 'a@friend.example', 'gone@ours.example')), 'ok', 'client DUNNO goes on to the sender table')
  assert.equal(
    reply(access.decide('192.0.2.3', 'x@spam.example', 'c@ours.example')),
    '554 5.7.1 <x@spam.example>: Sender address rejected: Access denied',
  )
  assert.equal(
    reply(access.decide('192.0.2.3', 'x@other.example', 'gone@ours.example')),
    '550 5.1.6 <gone@ours.example>: Recipient address rejected: moved away',
  )
  assert.equal(reply(access.decide('192.0.2.3', 'x@other.example', null)), null, 'at MAIL FROM: no recipient yet')
  const lines = String(stream.read() ?? '')
    .trim()
    .split('\n')
  const warned = lines.map((l) => JSON.parse(l) as { message: string; file: string; line: number })
  assert.deepEqual(
    warned.map((w) => [w.message, path.basename(w.file), w.line]),
    [['access table line ignored', 'sender_access', 3]],
  )

  // Replaced by a rename, as an editor or mailctl would: read again at the next use.
  await fs.writeFile(path.join(dir, 'sender_access.new'), 'spam.example OK\n')
  await fs.rename(path.join(dir, 'sender_access.new'), path.join(dir, 'sender_access'))
  await access.refresh()
  assert.equal(reply(access.decide('192.0.2.3', 'x@spam.example', 'c@ours.example')), 'ok')
  await fs.rm(path.join(dir, 'client_access'))
  await access.refresh()
  assert.equal(reply(access.decide('192.0.2.2', 'x@other.example', 'c@ours.example')), null)
})
