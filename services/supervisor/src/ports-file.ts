// The ports file (PORTS_FILE, default SPOOL_DIR/ports.json): every service's bound ports, so
// tests, benchmarks and mailctl can find them. Written whole by rename, so readers never see half.
import fs from 'node:fs/promises'

export type PortsTable = Record<string, Record<string, { address: string; port: number }>>

export async function writePortsFile(file: string, ports: PortsTable): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`
  await fs.writeFile(tmp, JSON.stringify(ports, null, 2) + '\n', { mode: 0o644 })
  await fs.rename(tmp, file)
}
