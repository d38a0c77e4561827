// header_checks(5) tables: what is read from the file, what a message's fields get.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  BODY_CHECKS_LIMIT,
  DataGate,
  judgeBody,
  judgeHeader,
  parseHeaderBlock,
  parseHeaderChecks,
  type HeaderField,
  type HeaderVerdict,
} from '@facteur/reception'

const limits = { sizeLimit: 1 << 20, headerSizeLimit: 1 << 16, headerCountLimit: 100 }

const TABLE = [
  '# a comment',
  '/^Subject:.*viagra/ REJECT 5.7.0 No pills ($0)',
  '/^Subject: (\\w+) report$/i REPLACE Subject: [report] $1',
  '/^X-Mailer: Spammer/ DISCARD bulk',
  '/^X-Originating-IP:/ IGNORE',
  '/^X-Review:/ HOLD wait for a human',
  '/^List-Id:/ PREPEND X-Listed: yes',
  '/^From:.*@old\\.example/ WARN old domain',
  '/^Date:.*1999/ REJECT',
  '|^X-Path: /tmp/| OK',
].join('\n')

const { rules, problems } = parseHeaderChecks(TABLE)
const judge = (header: string) => judgeHeader(rules, parseHeaderBlock(header.replace(/\n/g, '\r\n')))

test('every line of a Postfix table is read; matching is case-insensitive unless the flags say i', () => {
  assert.deepEqual(problems, [])
  assert.equal(rules.length, 9)
  assert.equal(judge('subject: buy VIAGRA now').reject?.reply, '550 5.7.0 No pills (subject: buy VIAGRA)')
  const cased = judge('Subject: weekly REPORT')
  assert.equal(cased.matches.length, 0, 'the i flag makes the pattern case-sensitive')
})

test('REJECT and DISCARD end the inspection; HOLD, WARN and the edits go on to the next field', () => {
  const v = judge('X-Review: yes\nFrom: a@old.example\nX-Mailer: Spammer 1.0\nSubject: viagra')
  assert.equal(v.reject, null)
  assert.equal(v.discard, 'bulk')
  assert.equal(v.hold, 'wait for a human')
  assert.deepEqual(
    v.matches.map((m) => [m.line, m.action]),
    [
      [6, 'hold'],
      [8, 'warn'],
      [4, 'discard'],
    ],
  )
  assert.equal(judge('Date: 1 Jan 1999\nSubject: x').reject?.reply, '550 5.7.1 Message content rejected')
  const echoed = parseHeaderChecks('/^Subject: (.*)/ REJECT No "$1" here')
  const latin1 = Buffer.from('Subject: café\u0007', 'utf8').toString('latin1')
  assert.equal(judgeHeader(echoed.rules, parseHeaderBlock(latin1)).reject?.reply, '550 5.7.1 No "caf???" here', 'printable ASCII only')
})

test('the first rule that matches a field decides, DUNNO included; a negated pattern matches the others; folded fields are unfolded', () => {
  const t = parseHeaderChecks('!/^Date:/ DUNNO\n/1999/ REJECT\n/^Subject: a b$/ INFO folded $0')
  assert.deepEqual(t.problems, [])
  const v = (header: string) => judgeHeader(t.rules, parseHeaderBlock(header.replace(/\n/g, '\r\n')))
  assert.equal(v('Subject: 1999\nTo: a@1999.example').reject, null, 'DUNNO stops the lookup for every field but Date:')
  assert.match(v('Subject: x\nDate: 1 Jan 1999').reject?.reply ?? '', /^550 /)
  const u = parseHeaderChecks('/^Subject: a b$/ INFO folded: $0')
  assert.deepEqual(judgeHeader(u.rules, parseHeaderBlock('Subject: a\r\n b')).matches, [
    { line: 1, action: 'info', field: 'Subject: a b', text: 'folded: Subject: a b' },
  ])
})

test('IGNORE, REPLACE and PREPEND edit the fields the gate stores; the groups fill the text', () => {
  const header = 'Subject: weekly report\r\nX-Originating-IP: [192.0.2.1]\r\nList-Id: <l.example>\r\nTo: b@x\r\n\r\nbody\r\n'
  // As the receiving services do: judged on the gate's fields, the verdict's edits applied by it.
  let v: HeaderVerdict | undefined
  const check = (fields: HeaderField[]) => ((v = judgeHeader(rules, fields)), null)
  const gate = new DataGate(limits, check, { rewrite: (f) => v?.rewrite.get(f) })
  const out: Buffer[] = []
  for (const b of [gate.push(Buffer.from(header, 'latin1')), gate.end()]) if (b) out.push(b)
  assert.equal(
    Buffer.concat(out).toString('latin1'),
    'Subject: [report] weekly\r\nX-Listed: yes\r\nList-Id: <l.example>\r\nTo: b@x\r\n\r\nbody\r\n',
  )
})

test('a UTF-8 word in the table matches it in a UTF-8 header; other delimiters than / work', () => {
  const t = parseHeaderChecks('/^Subject: .*réunion/ REJECT\n|^X-Path: /tmp/x| HOLD path\n')
  assert.deepEqual(t.problems, [])
  const subject = Buffer.from('Subject: la réunion', 'utf8').toString('latin1')
  const v = judgeHeader(t.rules, parseHeaderBlock(subject))
  assert.match(v.reject?.reply ?? '', /^550 5\.7\.1 /)
  assert.equal(judgeHeader(t.rules, parseHeaderBlock('X-Path: /tmp/x')).hold, 'path')
})

test('lines Facteur cannot use are reported with their line number and skipped', () => {
  const bad = parseHeaderChecks(
    [
      '/^Subject:/ REDIRECT a@b.example',
      '/^Subject:(/ REJECT',
      'Subject: x REJECT',
      '/^Subject:/x REJECT',
      '/^Subject:/',
      '/^Subject:/ REPLACE not a field',
      '/^Subject:/ IGNORE me',
      'if /^Subject:/',
      '/^To:/ REJECT fine',
    ].join('\n'),
  )
  assert.equal(bad.rules.length, 1)
  assert.deepEqual(
    bad.problems.map((p) => p.line),
    [1, 2, 3, 4, 5, 6, 7, 8],
  )
  assert.match(bad.problems[0].reason, /"REDIRECT" is not an action Facteur has/)
  assert.match(bad.problems[1].reason, /is not a pattern/)
})

test('body_checks: each line of the body, in its first 50 KiB only; actions that edit are refused there', () => {
  const table = parseHeaderChecks('/bitcoin wallet/ REJECT 5.7.0 No scams\n/^X-Not-A-Header/ IGNORE\n/unsubscribe here/ HOLD bulk?\n', {
    body: true,
  })
  assert.deepEqual(
    table.problems.map((p) => [p.line, /IGNORE edits header fields/.test(p.reason)]),
    [[2, true]],
  )
  const run = (body: string) => {
    let refused: string | undefined
    const gate = new DataGate(
      limits,
      undefined,
      {},
      {
        limit: BODY_CHECKS_LIMIT,
        check: (sample) => {
          const v = judgeBody(table.rules, sample.toString('latin1'))
          refused = v.reject?.reply ?? (v.hold !== null ? `held: ${v.hold}` : undefined)
          return v.reject
        },
      },
    )
    for (const chunk of [`Subject: s\r\n\r\n`, body]) gate.push(Buffer.from(chunk, 'latin1'))
    gate.end()
    return { refused, error: gate.error?.reply }
  }
  assert.deepEqual(run('hello\r\nsend to my Bitcoin wallet\r\n'), { refused: '550 5.7.0 No scams', error: '550 5.7.0 No scams' })
  assert.deepEqual(run('to unsubscribe here, click\r\n'), { refused: 'held: bulk?', error: undefined })
  const filler = `${'x'.repeat(998)}\r\n`.repeat(52)
  assert.deepEqual(run(`${filler}bitcoin wallet\r\n`), { refused: undefined, error: undefined }, 'past body_checks_size_limit')
})
