import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { openAccounts, hashPassword } from '@facteur/accounts'

async function setup(users: string, aliases: string) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-accounts-'))
  await fs.writeFile(path.join(dir, 'users'), users)
  await fs.writeFile(path.join(dir, 'aliases'), aliases)
  const acc = openAccounts({
    configDir: dir,
    localDomains: ['ours.example', 'other.example'],
    postmaster: 'postmaster@ours.example',
    delimiter: '+',
  })
  await acc.refresh()
  return { dir, acc }
}

test('aliases expand recursively, once per final mailbox, with external targets', async () => {
  const { acc } = await setup(
    'alice@ours.example:{PLAIN}a\nbob@ours.example:{PLAIN}b\n',
    'team@ours.example: alice@ours.example, sales@ours.example, friend@remote.example\nsales@ours.example: bob@ours.example, alice@ours.example\n',
  )
  assert.deepEqual(acc.expand('Team@OURS.example'), {
    mailboxes: ['alice@ours.example', 'bob@ours.example'],
    external: ['friend@remote.example'],
    loop: false,
  })
})

test('an alias cycle is detected and a user in it still gets one copy', async () => {
  const { acc } = await setup(
    'alice@ours.example:{PLAIN}a\n',
    'a@ours.example: b@ours.example\nb@ours.example: a@ours.example\nc@ours.example: c@ours.example, alice@ours.example\n',
  )
  assert.deepEqual(acc.expand('a@ours.example'), { mailboxes: [], external: [], loop: true })
  assert.deepEqual(acc.expand('c@ours.example')?.mailboxes, ['alice@ours.example'])
})

test('sub-addresses and case are folded; postmaster always exists', async () => {
  const { acc } = await setup('alice@ours.example:{PLAIN}a\n', '')
  assert.deepEqual(acc.expand('ALICE+news@ours.example')?.mailboxes, ['alice@ours.example'])
  assert.equal(acc.expand('nobody@ours.example'), null)
  assert.deepEqual(acc.expand('postmaster@other.example')?.mailboxes, ['postmaster@ours.example'])
})

test('a users file replaced by rename is picked up', async () => {
  const { dir, acc } = await setup('alice@ours.example:{PLAIN}a\n', '')
  assert.equal(acc.expand('carol@ours.example'), null)
  await fs.writeFile(path.join(dir, 'users.new'), `carol@ours.example:${await hashPassword('s3cret')}\n`)
  await fs.rename(path.join(dir, 'users.new'), path.join(dir, 'users'))
  await acc.refresh()
  assert.deepEqual(acc.expand('carol@ours.example')?.mailboxes, ['carol@ours.example'])
  assert.equal(await acc.authenticate('carol@ours.example', 's3cret'), true)
  assert.equal(await acc.authenticate('carol@ours.example', 'wrong'), false)
})

test('a name nobody has costs a bcrypt comparison like a user with a wrong password, and never authenticates', async () => {
  const { acc } = await setup(`alice@ours.example:${await hashPassword('right')}\n`, '')
  const median = async (address: string): Promise<number> => {
    const times: number[] = []
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now()
      assert.equal(await acc.authenticate(address, 'wrong'), false)
      times.push(performance.now() - t0)
    }
    return times.sort((a, b) => a - b)[2]
  }
  const known = await median('alice@ours.example')
  const unknown = await median('nobody@ours.example')
  // Without the comparison an unknown name answered in microseconds, a user in tens of ms.
  assert.ok(unknown > known / 3, `unknown name ${unknown.toFixed(1)} ms, user ${known.toFixed(1)} ms`)
  assert.equal(await acc.authenticate('alice@ours.example', 'right'), true)
})

test("a domain's @domain entry takes the names nobody has there; users, aliases and postmaster keep theirs", async () => {
  const { acc } = await setup(
    'alice@ours.example:{PLAIN}a\nbob@other.example:{PLAIN}b\n',
    '@other.example: alice@ours.example\nsales@other.example: bob@other.example\n',
  )
  assert.deepEqual(acc.expand('anything@other.example'), { mailboxes: ['alice@ours.example'], external: [], loop: false, catchAll: true })
  assert.deepEqual(acc.expand('bob@other.example'), { mailboxes: ['bob@other.example'], external: [], loop: false })
  assert.deepEqual(acc.expand('bob+tag@other.example')?.mailboxes, ['bob@other.example'])
  assert.deepEqual(acc.expand('sales@other.example')?.mailboxes, ['bob@other.example'])
  assert.deepEqual(acc.expand('postmaster@other.example')?.mailboxes, ['postmaster@ours.example'])
  // A domain without an entry is unchanged.
  assert.equal(acc.expand('nobody@ours.example'), null)
})

test('@alias.example: @ours.example makes a domain an alias of another, the local part kept (virtual(5))', async () => {
  const { acc } = await setup(
    'alice@ours.example:{PLAIN}a\nbob@ours.example:{PLAIN}b\n',
    '@other.example: @ours.example\nteam@ours.example: alice@ours.example, bob@ours.example\n',
  )
  assert.deepEqual(acc.expand('Alice@other.example'), { mailboxes: ['alice@ours.example'], external: [], loop: false })
  assert.deepEqual(acc.expand('alice+news@other.example')?.mailboxes, ['alice@ours.example'])
  assert.deepEqual(acc.expand('team@other.example')?.mailboxes, ['alice@ours.example', 'bob@ours.example'])
  // Nobody by that name in the target domain: nobody here either (refused at RCPT, 550 5.1.1).
  assert.deepEqual(acc.expand('carol@other.example'), { mailboxes: [], external: [], loop: false })
  // A domain aliased to itself is a loop, not a hang.
  const { acc: self } = await setup('', '@other.example: @other.example\n')
  assert.equal(self.expand('x@other.example')?.loop, true)
})

test('aliases_regexp: asked after users, aliases and the catch-all, the first line that matches decides, $1 filled in; a bad line is reported', async () => {
  const { dir, acc } = await setup(
    'alice@ours.example:{PLAIN}a\nbob@ours.example:{PLAIN}b\nsales-bob@ours.example:{PLAIN}s\n',
    '@other.example: bob@ours.example\n',
  )
  const problems: { file: string; line: number; reason: string }[] = []
  const withProblems = openAccounts({
    configDir: dir,
    localDomains: ['ours.example', 'other.example'],
    postmaster: 'postmaster@ours.example',
    delimiter: '+',
    onProblem: (p) => problems.push(p),
  })
  await fs.writeFile(
    path.join(dir, 'aliases_regexp'),
    [
      '/^sales-(alice|bob)@ours\\.example$/  $1@ours.example',
      '/^(ops|noc)-.*@/                    alice@ours.example, pager@remote.example',
      '/^loop-.*@ours\\.example$/           loop-again@ours.example',
      '/^anything@other\\.example$/         alice@ours.example',
      '/^broken(/                          alice@ours.example',
      '/^x@/                               not an address',
    ].join('\n'),
  )
  for (const a of [acc, withProblems]) await a.refresh()
  assert.deepEqual(acc.expand('Sales-Alice@ours.example'), { mailboxes: ['alice@ours.example'], external: [], loop: false, catchAll: true })
  assert.deepEqual(acc.expand('sales-bob@ours.example')?.mailboxes, ['sales-bob@ours.example'], 'a user keeps its name')
  assert.deepEqual(acc.expand('noc-7@ours.example'), {
    mailboxes: ['alice@ours.example'],
    external: ['pager@remote.example'],
    loop: false,
    catchAll: true,
  })
  assert.equal(acc.expand('loop-1@ours.example')?.loop, true)
  assert.deepEqual(acc.expand('anything@other.example')?.mailboxes, ['bob@ours.example'], 'the catch-all comes first')
  assert.equal(acc.expand('sales-carol@ours.example'), null)
  assert.deepEqual(
    problems.map((p) => [p.line, path.basename(p.file)]),
    [
      [5, 'aliases_regexp'],
      [6, 'aliases_regexp'],
    ],
  )
})
