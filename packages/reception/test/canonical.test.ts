// sender_canonical: the table as read, and the addresses rewritten in sender fields.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createLogger } from '@facteur/logging'
import { openCanonical, parseCanonical, parseHeaderBlock } from '@facteur/reception'

test('lines: an address or @domain to an address, @domain to @domain; the rest reported with its line', () => {
  const { table, problems } = parseCanonical(
    'Root@NAS.lan Alerts@Ours.example\n@old.example @ours.example\nx@y.example @z.example\nlonely\n@bad value\n',
  )
  assert.deepEqual(
    [...table],
    [
      ['root@nas.lan', 'alerts@ours.example'],
      ['@old.example', '@ours.example'],
    ],
  )
  assert.deepEqual(
    problems.map((p) => p.line),
    [3, 4, 5],
  )
})

test('the address first, then its domain; every sender field, every address in it, names and other fields untouched', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'facteur-canonical-'))
  await fs.writeFile(path.join(dir, 'sender_canonical'), 'boss@old.example chief@ours.example\n@old.example @ours.example\n')
  const c = openCanonical({ configDir: dir, logger: createLogger({ service: 'test', level: 'error' }) })
  await c.refresh()
  assert.equal(c.map('Boss@old.example'), 'chief@ours.example')
  assert.equal(c.map('jo@old.example'), 'jo@ours.example')
  assert.equal(c.map('jo@elsewhere.example'), null)
  const fields = parseHeaderBlock(
    'From: "jo@old.example" <jo@old.example>, boss@old.example\r\nSender: <jo@old.example>\r\nTo: jo@old.example\r\nResent-From:\r\n jo@old.example',
  )
  assert.deepEqual(
    fields.map((f) => c.field(f)),
    [
      'From: "jo@old.example" <jo@ours.example>, chief@ours.example\r\n',
      'Sender: <jo@ours.example>\r\n',
      undefined,
      'Resent-From:\r\n jo@ours.example\r\n',
    ],
  )
})
