// The content filter in the appliance: the MX asks it during DATA, so refusals happen in the SMTP
// dialogue, and what it accepts reaches the mailbox with its headers (and the Junk folder).
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { startAppliance, type Appliance } from './support/appliance.js'
import { sendMail } from './support/smtp-session.js'
import { swaks, lastReply } from './support/swaks.js'
import { readMaildir, waitForCount } from './support/mbox.js'
import { startClamd, EICAR, EICAR_SIGNATURE, type Clamd } from './support/clamd.js'
import { startSpamd, GTUBE, type Spamd } from './support/spamd.js'
import { startDns, type Dns } from './support/dnsmasq.js'
import { tempDir, removeDir } from './support/process.js'

let clamd: Clamd
let spamd: Spamd
let dns: Dns
let mx: Appliance
let port: number

before(async () => {
  dns = await startDns()
  clamd = await startClamd()
  spamd = await startSpamd()
  mx = await startAppliance({
    users: { 'bob@ours.example': 'pw-bob' },
    services: ['filter', 'smtp-ingress', 'delivery'],
    env: {
      MAILBOX_FORMAT: 'maildir',
      CLAMAV_PORT: String(clamd.port),
      SPAMD_PORT: String(spamd.port),
      DNS_SERVERS: dns.server,
      // GTUBE scores 1000: here it is junk, not refused, so that it reaches the Junk folder.
      SPAM_JUNK_SCORE: '8',
      SPAM_REJECT_SCORE: '2000',
      FILTER_SCAN_TIMEOUT: '10s',
    },
  })
  port = mx.port('smtp-ingress', 'smtp')
})
after(async () => {
  await mx?.stop()
  await spamd?.close()
  await clamd?.close()
  await dns?.close()
})

const inbox = (): Promise<string[]> => readMaildir(path.join(mx.mailDir, 'bob'))
const junk = (): Promise<string[]> => readMaildir(path.join(mx.mailDir, 'bob', '.Junk'))

function text(subject: string, body: string, extra: string[] = []): string {
  return [
    ...extra,
    'From: Alice <alice@remote.example>',
    'To: bob@ours.example',
    `Subject: ${subject}`,
    'Date: Sat, 28 Nov 2026 05:49:15 +0000',
    `Message-ID: <${subject.replace(/\W/g, '')}@remote.example>`,
    '',
    body,
    '',
  ].join('\r\n')
}

/** swaks with one attachment of `content`, named `name` in its MIME part. */
async function withAttachment(name: string, content: string): Promise<Awaited<ReturnType<typeof swaks>>> {
  const dir = await tempDir('attachment')
  try {
    const file = path.join(dir, 'content')
    await fs.writeFile(file, content)
    return await swaks([
      '--server',
      `127.0.0.1:${port}`,
      '--from',
      'alice@remote.example',
      '--to',
      'bob@ours.example',
      '--attach-name',
      name,
      '--attach',
      `@${file}`,
      '--timeout',
      '20',
    ])
  } finally {
    await removeDir(dir)
  }
}

test('refuses a message carrying EICAR in the SMTP dialogue with 554 5.7.1 naming the signature', async () => {
  // A .com name is banned too: the virus is named first.
  const out = await withAttachment('eicar.com', EICAR)
  assert.equal(lastReply(out, '.'), `554 5.7.1 Virus found: ${EICAR_SIGNATURE}`)
})

test('refuses an attachment whose extension FILTER_BANNED_EXTENSIONS lists (the defaults), with 554 5.7.1 naming it', async () => {
  const out = await withAttachment('invoice.pdf.exe', 'MZ not really a program')
  assert.equal(lastReply(out, '.'), '554 5.7.1 Attachment refused: "invoice.pdf.exe" (files of that type are not accepted here)')
  await mx.waitForLog(/verdict .*action=reject .*banned=\["invoice\.pdf\.exe"\]/)
  const pdf = await withAttachment('invoice.pdf', '%PDF-1.4 a document')
  assert.match(lastReply(pdf, '.') ?? '', /^250 /)
})

test('delivers GTUBE to the Junk folder of a Maildir, flagged', async () => {
  const r = await sendMail(port, { from: 'alice@remote.example', to: ['bob@ours.example'], data: text('gtube', GTUBE) })
  assert.match(r.message ?? '', /^250 /)
  const [message] = await waitForCount(junk, 1)
  assert.match(message, /^X-Spam-Flag: YES$/m)
  assert.match(message, /^Subject: gtube$/m)
  assert.ok(!(await inbox()).some((m) => m.includes('Subject: gtube')))
})

test('delivers ham to the INBOX with our Authentication-Results and the spam headers, forged results removed', async () => {
  const forged = [
    'Authentication-Results: mx.ours.example; spf=pass smtp.mailfrom=alice@remote.example; dmarc=pass',
    'Authentication-Results: mx.remote.example; spf=pass',
  ]
  const r = await sendMail(port, {
    from: 'alice@remote.example',
    to: ['bob@ours.example'],
    helo: 'mail.remote.example',
    data: text('ham', 'Hello Bob, lunch tomorrow at noon?', forged),
  })
  assert.match(r.message ?? '', /^250 /)
  const messages = await waitForCount(async () => (await inbox()).filter((m) => m.includes('Subject: ham')), 1)
  const m = messages[0].replace(/\n[ \t]+/g, ' ')
  const ours = m.match(/^Authentication-Results: mx\.ours\.example;.*$/gm) ?? []
  assert.equal(ours.length, 1, m)
  assert.match(ours[0], /spf=none /)
  assert.doesNotMatch(m, /dmarc=pass/)
  assert.match(m, /^Authentication-Results: mx\.remote\.example; spf=pass$/m)
  assert.match(m, /^X-Spam-Status: No, score=/m)
  assert.doesNotMatch(m, /X-Spam-Flag/)
})

test('answers 451 4.7.1 while clamd is down (FILTER_FAILURE=tempfail) and accepts again once it is back', async () => {
  await clamd.stop()
  try {
    const r = await sendMail(port, { from: 'alice@remote.example', to: ['bob@ours.example'], data: text('while down', 'Hello') })
    assert.equal(r.message, '451 4.7.1 Message could not be scanned, try again later')
  } finally {
    await clamd.start()
  }
  const again = await sendMail(port, { from: 'alice@remote.example', to: ['bob@ours.example'], data: text('back', 'Hello') })
  assert.match(again.message ?? '', /^250 /)
})

test("mail from TRUSTED_NETWORKS is our users' own: no DMARC refusal even where our domain says p=reject", async (t) => {
  const strictDns = await startDns({
    txt: [
      { name: 'ours.example', text: 'v=spf1 -all' },
      { name: '_dmarc.ours.example', text: 'v=DMARC1; p=reject' },
    ],
  })
  t.after(() => strictDns.close())
  const start = (trusted: string): Promise<Appliance> =>
    startAppliance({
      users: { 'bob@ours.example': 'pw-bob' },
      services: ['filter', 'smtp-ingress', 'delivery'],
      env: { TRUSTED_NETWORKS: trusted, CLAMAV_PORT: String(clamd.port), SPAMD_PORT: String(spamd.port), DNS_SERVERS: strictDns.server },
    })
  const ourUser = text('from the LAN', 'Hello Bob', []).replace('From: Alice <alice@remote.example>', 'From: Alice <alice@ours.example>')
  const outside = await start('')
  t.after(() => outside.stop())
  const refused = await sendMail(outside.port('smtp-ingress', 'smtp'), {
    from: 'alice@ours.example',
    to: ['bob@ours.example'],
    data: ourUser,
  })
  assert.equal(refused.message, '550 5.7.1 Rejected by the DMARC policy of ours.example')
  const lan = await start('127.0.0.0/8')
  t.after(() => lan.stop())
  const accepted = await sendMail(lan.port('smtp-ingress', 'smtp'), { from: 'alice@ours.example', to: ['bob@ours.example'], data: ourUser })
  assert.match(accepted.message ?? '', /^250 /)
})
