// Rewrites CONFIG_DIR/users and CONFIG_DIR/aliases whole, by rename, so the services (which
// re-read them on change) never see half a file.
import fs from 'node:fs/promises'
import path from 'node:path'

export async function readText(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return ''
    throw err
  }
}

export async function replaceFile(file: string, text: string, mode = 0o640): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true })
  const tmp = `${file}.mailctl.${process.pid}`
  const fh = await fs.open(tmp, 'w', mode)
  try {
    await fh.writeFile(text)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    const st = await fs.stat(file)
    await fs.chown(tmp, st.uid, st.gid).catch(() => undefined)
  } catch {
    // new file
  }
  await fs.rename(tmp, file)
}
