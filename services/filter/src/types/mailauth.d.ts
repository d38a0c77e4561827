// The part of mailauth 4.x (no types of its own) the filter uses.
declare module 'mailauth' {
  export type Resolver = (name: string, rrtype: string) => Promise<unknown>
  export type AuthStatus = {
    result: string
    comment?: string
    policy?: Record<string, string>
    aligned?: string | false
    underSized?: number | false
  }
  export type DkimResult = { id?: string; signingDomain: string; selector?: string; status: AuthStatus; info: string }
  export type SpfResult = { domain: string; status: AuthStatus; info: string; header: string }
  export type DmarcResult = { status: AuthStatus; domain?: string; policy?: string; p?: string; sp?: string; info: string } | false
  export type ArcResult = { status: AuthStatus; info?: string; i?: number } | false
  export type AuthenticateResult = {
    dkim: { results?: DkimResult[]; headerFrom?: string[] }
    spf: SpfResult | false
    dmarc: DmarcResult
    arc: ArcResult
    headers: string
  }
  export function authenticate(
    input: Buffer | string | NodeJS.ReadableStream,
    opts: {
      ip?: string
      helo?: string
      sender?: string
      mta?: string
      resolver?: Resolver
      trustReceived?: boolean
      disableArc?: boolean
      disableDmarc?: boolean
      disableBimi?: boolean
    },
  ): Promise<AuthenticateResult>
}

declare module 'mailauth/lib/spf/index.js' {
  import type { Resolver, SpfResult } from 'mailauth'
  export function spf(opts: { sender: string; ip: string; helo: string; mta: string; resolver?: Resolver }): Promise<SpfResult>
}

declare module 'mailauth/lib/dmarc/index.js' {
  import type { ArcResult, DmarcResult, Resolver } from 'mailauth'
  export function dmarc(opts: {
    headerFrom: string[] | string
    spfDomains: string[]
    dkimDomains: { id?: string; domain: string; aligned?: string | false; underSized?: number | false }[]
    arcResult?: ArcResult
    resolver?: Resolver
  }): Promise<DmarcResult>
}

// Used by the tests to sign test messages with a test key.
declare module 'mailauth/lib/dkim/sign.js' {
  export function dkimSign(
    input: Buffer | string,
    opts: { canonicalization?: string; signTime?: Date; signatureData: { signingDomain: string; selector: string; privateKey: string }[] },
  ): Promise<{ signatures: string; errors: unknown[] }>
}

// Used by the tests to seal a message as a forwarder would (RFC 8617 §5.1).
declare module 'mailauth/lib/arc/index.js' {
  export function sealMessage(
    input: Buffer | string,
    seal: { signingDomain: string; selector: string; privateKey: string; authResults: string; cv: 'none' | 'pass' | 'fail' },
  ): Promise<Buffer>
}
