// The part of mailauth 4.x (no types of its own) mailctl uses: SPF evaluation (lib/spf), for `dns check`.
declare module 'mailauth/lib/spf/index.js' {
  export function spf(opts: {
    sender: string
    ip: string
    helo: string
    mta: string
    resolver?: (name: string, rrtype: string) => Promise<unknown>
  }): Promise<{ status: { result: string; comment?: string }; info: string }>
}
