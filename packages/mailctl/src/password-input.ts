// A password from standard input (--password-stdin) or typed at a prompt without echo.
import readline from 'node:readline'

export async function readPassword(ctx: { flags: Set<string>; stdin: NodeJS.ReadableStream }, prompt = 'Password: '): Promise<string> {
  if (ctx.flags.has('--password-stdin') || !process.stdin.isTTY) {
    let text = ''
    for await (const chunk of ctx.stdin) text += chunk.toString()
    return text.replace(/\r?\n$/, '')
  }
  const ask = (q: string): Promise<string> =>
    new Promise((resolve) => {
      const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true })
      const out = rl as unknown as { _writeToOutput: (s: string) => void }
      process.stderr.write(q)
      out._writeToOutput = () => undefined // no echo
      rl.question('', (answer) => {
        rl.close()
        process.stderr.write('\n')
        resolve(answer)
      })
    })
  const first = await ask(prompt)
  const again = await ask('Again: ')
  if (first !== again) throw new Error('the passwords differ')
  return first
}
