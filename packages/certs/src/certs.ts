import fs from 'node:fs/promises'
import path from 'node:path'
import tls from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { generate } from 'selfsigned'

export type TlsMaterial = { key: Buffer; cert: Buffer; selfSigned: boolean; certFile: string; keyFile: string; context: tls.SecureContext }

export type Certificates = {
  current(): TlsMaterial
  /** Re-reads the files if they changed; returns true when a new certificate was loaded. */
  reload(): Promise<boolean>
  /** For tls.createServer / smtp-server: always answers with the newest certificate. */
  SNICallback(servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void
}

/** TLS 1.2 minimum (RFC 8996 retired 1.0 and 1.1). */
export const MIN_VERSION = 'TLSv1.2'

export async function openCertificates(opts: {
  configDir: string
  hostname: string
  certFile?: string
  keyFile?: string
  owner?: { uid?: number; gid?: number }
}): Promise<Certificates> {
  let certFile = opts.certFile
  let keyFile = opts.keyFile
  const selfSigned = !certFile
  if (!certFile || !keyFile) {
    const dir = path.join(opts.configDir, 'tls')
    certFile = path.join(dir, 'selfsigned.crt')
    keyFile = path.join(dir, 'selfsigned.key')
    await ensureSelfSigned(dir, certFile, keyFile, opts.hostname, opts.owner ?? {})
  }
  let stamp = ''
  let material: TlsMaterial
  const files = { certFile, keyFile }
  const read = async (): Promise<boolean> => {
    const [c, k] = await Promise.all([fs.stat(files.certFile), fs.stat(files.keyFile)])
    const s = `${c.ino}:${c.mtimeMs}:${c.size}:${k.ino}:${k.mtimeMs}:${k.size}`
    if (s === stamp) return false
    const [cert, key] = await Promise.all([fs.readFile(files.certFile), fs.readFile(files.keyFile)])
    const context = tls.createSecureContext({ cert, key, minVersion: MIN_VERSION })
    material = { cert, key, selfSigned: selfSigned || isSelfSigned(cert), certFile: files.certFile, keyFile: files.keyFile, context }
    stamp = s
    return true
  }
  await read()
  return {
    current: () => material,
    reload: () => read().catch(() => false),
    SNICallback(_servername, cb) {
      read()
        .catch(() => false)
        .then(() => cb(null, material.context), cb)
    },
  }
}

function isSelfSigned(pem: Buffer): boolean {
  try {
    const x = new X509Certificate(pem)
    return x.issuer === x.subject && x.verify(x.publicKey)
  } catch {
    return false
  }
}

async function ensureSelfSigned(
  dir: string,
  certFile: string,
  keyFile: string,
  hostname: string,
  owner: { uid?: number; gid?: number },
): Promise<void> {
  try {
    await Promise.all([fs.access(certFile), fs.access(keyFile)])
    return
  } catch {
    // first start: make one
  }
  await fs.mkdir(dir, { recursive: true, mode: 0o700 })
  const pems = await generate([{ name: 'commonName', value: hostname }], {
    keySize: 2048,
    notAfterDate: new Date(Date.now() + 3650 * 86_400_000),
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: hostname }] },
    ],
  })
  // Two services may start at once: each writes its own temporary files, the renames decide.
  const tag = `${process.pid}.${Date.now()}`
  await fs.writeFile(`${keyFile}.${tag}`, pems.private, { mode: 0o600 })
  await fs.writeFile(`${certFile}.${tag}`, pems.cert, { mode: 0o644 })
  if (owner.uid !== undefined && process.getuid?.() === 0) {
    await fs.chown(dir, owner.uid, owner.gid ?? owner.uid)
    await fs.chown(`${keyFile}.${tag}`, owner.uid, owner.gid ?? owner.uid)
    await fs.chown(`${certFile}.${tag}`, owner.uid, owner.gid ?? owner.uid)
  }
  // link(2) fails if the key exists: exactly one service wins and installs its pair, so the key
  // and the certificate always come from the same generation (two renames each could mix them).
  let won = false
  try {
    await fs.link(`${keyFile}.${tag}`, keyFile)
    won = true
    await fs.rename(`${certFile}.${tag}`, certFile)
  } catch (err) {
    if (won || (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  } finally {
    await fs.rm(`${keyFile}.${tag}`, { force: true })
    await fs.rm(`${certFile}.${tag}`, { force: true })
  }
  // The loser waits (bounded) for the winner's certificate to land beside its key.
  for (let i = 0; i < 100; i++) {
    if (
      await fs.access(certFile).then(
        () => true,
        () => false,
      )
    )
      return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${keyFile} exists without ${certFile}: remove it to generate a new pair`)
}
