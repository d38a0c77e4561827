// Typed readers over an environment object. Each reader names the variable in its error.

export class ConfigError extends Error {
  override name = 'ConfigError'
  constructor(
    readonly variable: string,
    readonly value: string | undefined,
    readonly expected: string,
  ) {
    super(
      value === undefined || value === ''
        ? `${variable} is not set: expected ${expected}`
        : `${variable}=${JSON.stringify(value)} is not valid: expected ${expected}`,
    )
  }
}

type Env = Readonly<Record<string, string | undefined>>

export class EnvReader {
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const v = this.env[name]
    return v === undefined ? undefined : v.trim()
  }

  /** A string; `undefined` default means the variable is required. */
  string(name: string, def?: string): string {
    const v = this.raw(name)
    if (v === undefined || v === '') {
      if (def === undefined) throw new ConfigError(name, v, 'a value')
      return def
    }
    return v
  }

  optional(name: string): string | undefined {
    const v = this.raw(name)
    return v === undefined || v === '' ? undefined : v
  }

  int(name: string, def: number, min: number, max: number): number {
    const v = this.raw(name)
    if (v === undefined || v === '') return def
    if (!/^-?\d+$/.test(v)) throw new ConfigError(name, v, `a whole number from ${min} to ${max}`)
    const n = Number(v)
    if (n < min || n > max) throw new ConfigError(name, v, `a whole number from ${min} to ${max}`)
    return n
  }

  port(name: string, def: number): number {
    const v = this.raw(name)
    if (v === undefined || v === '') return def
    if (!/^\d+$/.test(v) || Number(v) > 65535) throw new ConfigError(name, v, 'a port number from 0 to 65535 (0 picks a free port)')
    return Number(v)
  }

  /** Byte sizes: `10485760`, `25M`, `512K`, `1G`. */
  size(name: string, def: number): number {
    const v = this.raw(name)
    if (v === undefined || v === '') return def
    const m = /^(\d+)\s*([KMG]?)B?$/i.exec(v)
    if (!m) throw new ConfigError(name, v, 'a size in bytes, optionally with K, M or G (e.g. 25M)')
    const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G']
    return Number(m[1]) * mult
  }

  /** Durations: `30s`, `10m`, `5d`, `1h`, or plain seconds. Returned in milliseconds. */
  duration(name: string, def: string): number {
    const v = this.raw(name)
    const text = v === undefined || v === '' ? def : v
    const m = /^(\d+)\s*(ms|s|m|h|d)?$/.exec(text)
    if (!m) throw new ConfigError(name, v, 'a duration like 30s, 10m, 1h or 5d')
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd']
    return Number(m[1]) * unit
  }

  bool(name: string, def: boolean): boolean {
    const v = this.raw(name)
    if (v === undefined || v === '') return def
    if (/^(true|yes|on|1)$/i.test(v)) return true
    if (/^(false|no|off|0)$/i.test(v)) return false
    throw new ConfigError(name, v, 'true or false')
  }

  oneOf<T extends string>(name: string, choices: readonly T[], def: T): T {
    const v = this.raw(name)
    if (v === undefined || v === '') return def
    const lower = v.toLowerCase() as T
    if (!choices.includes(lower)) throw new ConfigError(name, v, `one of ${choices.join(', ')}`)
    return lower
  }

  /** A comma- or space-separated list. */
  list(name: string, def: readonly string[] = []): string[] {
    const v = this.raw(name)
    if (v === undefined || v === '') return [...def]
    return v
      .split(/[\s,]+/)
      .map((s) => s.trim())
      .filter(Boolean)
  }

  domain(name: string, value: string): string {
    const d = value.toLowerCase().replace(/\.$/, '')
    // RFC 1035 §2.3.1 labels: letters, digits, hyphens; at most 63 octets each.
    if (!/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(d))
      throw new ConfigError(name, value, 'a domain name such as example.org')
    return d
  }

  address(name: string, value: string): string {
    const m = /^([^@\s<>]+)@([^@\s<>]+)$/.exec(value)
    if (!m) throw new ConfigError(name, value, 'a mail address such as postmaster@example.org')
    return `${m[1]}@${this.domain(name, m[2])}`
  }
}
