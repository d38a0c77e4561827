import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createSrs, ensureSrsSecret, openSrs, SrsError, SRS_SECRET_FILE } from '@facteur/accounts'

const DAY = 86_400_000
const NOV_30_2026 = Date.UTC(2026, 10, 30, 9, 0)
const srs = createSrs({ domain: 'ours.example', secrets: ['tops3cret'] })

test('forward: the addresses postsrsd 1.10 made with the same secret and domain (SRS0 on 2026-11-30, SRS1)', () => {
  // `postsrsd -s FILE -d ours.example` holding "tops3cret", asked through its forward table that day.
  assert.equal(srs.forward('alice@sender.test', NOV_30_2026), 'SRS0=0p89=JT=sender.test=alice@ours.example')
  assert.equal(srs.forward('SRS0=abcd=AB=orig.test=bob@fwd.test', NOV_30_2026), 'SRS1=AABL=fwd.test==abcd=AB=orig.test=bob@ours.example')
})

test('reverse: an SRS0 address back to its sender, an SRS1 to the first forwarder’s SRS0; anything else is not ours to reverse', () => {
  const made = srs.forward('Alice.Smith+x@Sender.Test', NOV_30_2026)
  const local = made.slice(0, made.lastIndexOf('@'))
  assert.equal(srs.reverse(local, NOV_30_2026), 'Alice.Smith+x@Sender.Test')
  // Some hosts lower-case what they pass on: the hash is compared without regard to case.
  assert.equal(srs.reverse(local.toLowerCase(), NOV_30_2026), 'alice.smith+x@sender.test')

  const srs1 = srs.forward('SRS0=abcd=AB=orig.test=bob@fwd.test')
  assert.equal(srs.reverse(srs1.slice(0, srs1.lastIndexOf('@'))), 'SRS0=abcd=AB=orig.test=bob@fwd.test')
  // A forwarder's SRS1 forwarded again: signed anew by us, the first hop kept.
  const again = srs.forward(srs1.replace('@ours.example', '@second.example'))
  assert.match(again, /^SRS1=[^=]{4}=fwd\.test==abcd=AB=orig\.test=bob@ours\.example$/)

  assert.equal(srs.reverse('alice'), null)
  assert.equal(srs.reverse('srs-team'), null)
})

test('reverse refuses a forged hash, a damaged address and one older than 21 days', () => {
  const made = srs.forward('alice@sender.test', NOV_30_2026)
  const local = made.slice(0, made.lastIndexOf('@'))
  const [, hash] = local.split('=')
  const forged = local.replace(hash, hash === 'AAAA' ? 'BBBB' : 'AAAA')
  assert.throws(
    () => srs.reverse(forged, NOV_30_2026),
    (e: unknown) => e instanceof SrsError && /Invalid/.test(e.message),
  )
  assert.throws(() => srs.reverse(local.replace('alice', 'mallory'), NOV_30_2026), SrsError)
  for (const damaged of ['SRS0=abc', 'SRS0==JT=sender.test=alice', 'SRS0=0p89=JT=sender.test', 'SRS1=AABL=fwd.test', 'SRS0=0p89=J!=a=b'])
    assert.throws(() => srs.reverse(damaged, NOV_30_2026), SrsError, damaged)

  assert.equal(srs.reverse(local, NOV_30_2026 + 21 * DAY), 'alice@sender.test')
  assert.throws(
    () => srs.reverse(local, NOV_30_2026 + 22 * DAY),
    (e: unknown) => e instanceof SrsError && /Expired/.test(e.message),
  )
  // The stamp counts days modulo 1024: one made 1024 days ago reads as today's, as in libsrs2.
  assert.throws(() => srs.reverse(local, NOV_30_2026 + 1000 * DAY), SrsError)
})

test('a new secret put first signs; the old one after it still reverses the addresses it signed', () => {
  const before = srs.forward('alice@sender.test', NOV_30_2026)
  const rotated = createSrs({ domain: 'ours.example', secrets: ['n3w', 'tops3cret'] })
  const after = rotated.forward('alice@sender.test', NOV_30_2026)
  assert.notEqual(after, before)
  for (const a of [before, after]) assert.equal(rotated.reverse(a.slice(0, a.lastIndexOf('@')), NOV_30_2026), 'alice@sender.test')
  assert.throws(() => createSrs({ domain: 'ours.example', secrets: ['n3w'] }).reverse(before.split('@')[0], NOV_30_2026), SrsError)
})

test('CONFIG_DIR/srs.secret: made once with a random secret (mode 0600) by services starting together, kept after, re-read when replaced', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-srs-'))
  const file = path.join(dir, SRS_SECRET_FILE)
  const current = openSrs({ configDir: dir, domain: 'ours.example' })
  assert.equal(await current(), null, 'no file: no SRS')

  await Promise.all([ensureSrsSecret(dir), ensureSrsSecret(dir), ensureSrsSecret(dir)])
  const text = await fs.readFile(file, 'utf8')
  assert.match(text, /^[A-Za-z0-9+/]{32}\n$/)
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600)
  assert.deepEqual((await fs.readdir(dir)).sort(), [SRS_SECRET_FILE], 'no temporary file left')
  await ensureSrsSecret(dir)
  assert.equal(await fs.readFile(file, 'utf8'), text, 'an existing secret is kept')

  const first = await current()
  assert.ok(first)
  const made = first.forward('alice@sender.test')
  // An administrator puts a new secret first, by a rename: the next call signs with it.
  await fs.writeFile(`${file}.new`, `another\n${text}`)
  await fs.rename(`${file}.new`, file)
  const second = await current()
  assert.ok(second)
  assert.notEqual(second.forward('alice@sender.test'), made)
  assert.equal(second.reverse(made.split('@')[0]), 'alice@sender.test')

  await fs.writeFile(file, '\n')
  await assert.rejects(ensureSrsSecret(dir), /srs\.secret holds no secret/)
  await fs.rm(dir, { recursive: true, force: true })
})
