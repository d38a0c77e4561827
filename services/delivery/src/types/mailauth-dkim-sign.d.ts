// The part of mailauth 4.x (no types of its own) delivery uses: DKIM signing (lib/dkim/sign.js).
declare module 'mailauth/lib/dkim/sign.js' {
  export type DkimSignOptions = {
    canonicalization?: string
    algorithm?: string
    signTime?: Date
    signatureData: { signingDomain: string; selector: string; privateKey: string | Buffer; algorithm?: string; canonicalization?: string }[]
  }
  /** `signatures` holds the DKIM-Signature fields, CRLF-terminated, to put in front of the message. */
  export function dkimSign(
    message: string | Buffer | NodeJS.ReadableStream,
    options: DkimSignOptions,
  ): Promise<{ signatures: string; errors: unknown[] }>
}
