// mailctl header-checks test [FILE]: what CONFIG_DIR/header_checks and body_checks do to a message
// (FILE, or standard input), as `postmap -q - regexp:header_checks < message` shows a Postfix administrator:
// each field a rule matches, with the rule's line and action, then the outcome for the message.
// The lines the table cannot use are listed first. Nothing is sent or stored.
import fs from 'node:fs/promises'
import path from 'node:path'
import {
  BODY_CHECKS_FILE,
  BODY_CHECKS_LIMIT,
  HEADER_CHECKS_FILE,
  judgeBody,
  judgeHeader,
  parseHeaderBlock,
  parseHeaderChecks,
} from '@facteur/reception'
import { register } from './commands.js'
import { readText } from './tables.js'

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c))
  return Buffer.concat(chunks)
}

register('header-checks', {
  test: {
    usage: 'header-checks test [FILE]   # a message (FILE or standard input) through CONFIG_DIR/header_checks',
    async run(ctx) {
      const table = parseHeaderChecks(await readText(path.join(ctx.config.configDir, HEADER_CHECKS_FILE)))
      for (const p of table.problems) ctx.out(`; line ${p.line} ignored: ${p.reason}`)
      const bodyTable = parseHeaderChecks(await readText(path.join(ctx.config.configDir, BODY_CHECKS_FILE)), { body: true })
      for (const p of bodyTable.problems) ctx.out(`; ${BODY_CHECKS_FILE} line ${p.line} ignored: ${p.reason}`)
      const message = ctx.args[0] ? await fs.readFile(ctx.args[0]) : await readAll(ctx.stdin)
      // As the gate holds it: bytes as latin1, lines ending in CRLF, the header up to the empty line.
      const text = message.toString('latin1').replace(/\r?\n/g, '\r\n')
      const end = text.indexOf('\r\n\r\n')
      const header = judgeHeader(table.rules, parseHeaderBlock(end < 0 ? text : text.slice(0, end)))
      const bodyText =
        end < 0
          ? ''
          : Buffer.from(text.slice(end + 4), 'latin1')
              .subarray(0, BODY_CHECKS_LIMIT)
              .toString('latin1')
      const body = header.discard === null && !header.reject ? judgeBody(bodyTable.rules, bodyText) : null
      for (const m of header.matches) ctx.out(`line ${m.line}: ${m.action.toUpperCase()}${m.text ? ` ${m.text}` : ''}  <- ${m.field}`)
      for (const m of body?.matches ?? [])
        ctx.out(`${BODY_CHECKS_FILE} line ${m.line}: ${m.action.toUpperCase()}${m.text ? ` ${m.text}` : ''}  <- ${m.field}`)
      const verdict = {
        reject: header.reject ?? body?.reject ?? null,
        discard: header.discard ?? body?.discard ?? null,
        hold: header.hold ?? body?.hold ?? null,
      }
      const edits = header.rewrite.size
      if (verdict.reject) ctx.out(`rejected: ${verdict.reject.reply}`)
      else if (verdict.discard !== null) ctx.out(`discarded${verdict.discard ? `: ${verdict.discard}` : ''}`)
      else if (verdict.hold !== null) ctx.out(`held${verdict.hold ? `: ${verdict.hold}` : ''}${edits ? `, ${edits} field(s) edited` : ''}`)
      else ctx.out(`accepted${edits ? `, ${edits} field(s) edited` : ''}`)
      return 0
    },
  },
})
