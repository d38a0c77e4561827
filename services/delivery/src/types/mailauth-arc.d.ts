// The part of mailauth 4.x (no types of its own) delivery uses to seal: lib/arc/index.js.
declare module 'mailauth/lib/arc/index.js' {
  /** The ARC set (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results), CRLF-terminated, to put in front of the message. */
  export function sealMessage(
    input: Buffer | string,
    seal: {
      signingDomain: string
      selector: string
      privateKey: string
      authResults: string
      cv: 'none' | 'pass' | 'fail'
      signTime?: Date
    },
  ): Promise<Buffer>
}
