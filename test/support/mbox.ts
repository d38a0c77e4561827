// Reading what delivery wrote: the messages of an mbox file, the files of a Maildir.
import fs from 'node:fs/promises'
import path from 'node:path'

/** The messages of an mbox (split at `From ` lines), without their `From ` line. */
export async function readMbox(file: string): Promise<string[]> {
  let text: string
  try {
    text = await fs.readFile(file, 'latin1')
  } catch {
    return []
  }
  return text
    .split(/^From [^\n]*\n/m)
    .slice(1)
    .map((m) => m.replace(/\n$/, ''))
}

/** The messages in a Maildir's new/ and cur/ (or a folder's). */
export async function readMaildir(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const sub of ['new', 'cur']) {
    let names: string[] = []
    try {
      names = (await fs.readdir(path.join(dir, sub))).sort()
    } catch {
      continue
    }
    for (const n of names) out.push(await fs.readFile(path.join(dir, sub, n), 'latin1'))
  }
  return out
}

/** Polls until `read()` returns at least `count` items, or throws after timeoutMs. */
export async function waitForCount<T>(read: () => Promise<T[]>, count: number, timeoutMs = 15_000): Promise<T[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const items = await read()
    if (items.length >= count) return items
    if (Date.now() > deadline) throw new Error(`expected ${count} item(s), have ${items.length}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
