// RFC 3461 parameters a submission client gives (RET and ENVID on MAIL, NOTIFY and ORCPT on
// RCPT), as the envelope keeps them for delivery's status notifications. smtp-server has checked
// their syntax and undone the xtext encoding.
import type { SMTPServerAddress, SMTPServerEnvelopeDSN } from 'smtp-server'
import type { Envelope } from '@facteur/spool'

/** RFC 3461 §4.3 RET and §4.4 ENVID, or undefined when the client gave neither. */
export function envelopeDsn(dsn: SMTPServerEnvelopeDSN | undefined): Envelope['dsn'] {
  const ret = dsn?.ret === 'FULL' || dsn?.ret === 'HDRS' ? dsn.ret : undefined
  const envid = dsn?.envid ?? undefined
  return ret || envid ? { ...(ret && { ret }), ...(envid && { envid }) } : undefined
}

/** RFC 3461 §4.1 NOTIFY values, upper case. */
export function notifyOf(address: SMTPServerAddress): string[] | undefined {
  return address.dsn?.notify?.length ? [...address.dsn.notify] : undefined
}

/** RFC 3461 §4.2: the ORCPT address when it is an rfc822 one, else the address of RCPT TO. */
export function originalRecipient(address: SMTPServerAddress): string {
  const m = /^rfc822;(.+)$/i.exec(address.dsn?.orcpt ?? '')
  return m ? m[1].trim() : address.address
}

/** RFC 3461 §4.2 ORCPT as given (`addr-type;address`, xtext undone by smtp-server), for the next hop. */
export function orcptOf(address: SMTPServerAddress): string | undefined {
  return address.dsn?.orcpt || undefined
}
