// A smarthost as providers run them: a real Postfix offering STARTTLS (a certificate for its
// name, which the test trusts through NODE_EXTRA_CA_CERTS) and SMTP AUTH only under TLS, checked
// by Dovecot's auth service over TCP (smtpd_sasl_type = dovecot), relaying nothing for
// unauthenticated clients and everything for authenticated ones to `relayPort` (a sink).
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startDovecot, type Dovecot } from './dovecot.js'
import { startPostfix, type Postfix } from './postfix.js'
import { freePort } from './ports.js'
import { removeDir, runOk, tempDir } from './process.js'

export interface Smarthost {
  /** Postfix's smtpd port on 127.0.0.1. */
  port: number
  /** The certificate (PEM file) to trust: it is its own issuer, for `hostname`. */
  caFile: string
  postfix: Postfix
  close(): Promise<void>
}

export async function startSmarthost(options: { hostname: string; user: string; password: string; relayPort: number }): Promise<Smarthost> {
  const dir = await tempDir('smarthost')
  const certFile = join(dir, 'cert.pem')
  const keyFile = join(dir, 'key.pem')
  await runOk('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${options.hostname}`,
    '-addext',
    `subjectAltName=DNS:${options.hostname}`,
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ])
  const authPort = await freePort()
  let dovecot: Dovecot | undefined
  let postfix: Postfix | undefined
  try {
    dovecot = await startDovecot({
      format: 'maildir',
      mailLocation: `maildir:${dir}/mail/%u`,
      users: [{ user: options.user, password: options.password, uid: 65534, gid: 65534, home: dir }],
      extraConfig: `service auth {\n  inet_listener auth-postfix {\n    address = 127.0.0.1\n    port = ${authPort}\n  }\n}\n`,
    })
    postfix = await startPostfix({
      relayHost: '127.0.0.1',
      relayPort: options.relayPort,
      files: { 'cert.pem': await readFile(certFile, 'utf8'), 'key.pem': await readFile(keyFile, 'utf8') },
      extraMain: {
        myhostname: options.hostname,
        // Nobody relays by address: only AUTH lets mail through.
        mynetworks: '127.0.0.254/32',
        smtpd_relay_restrictions: 'permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination',
        smtpd_tls_security_level: 'may',
        smtpd_tls_cert_file: '$config_directory/cert.pem',
        smtpd_tls_key_file: '$config_directory/key.pem',
        smtpd_tls_auth_only: 'yes',
        smtpd_sasl_auth_enable: 'yes',
        smtpd_sasl_type: 'dovecot',
        smtpd_sasl_path: `inet:127.0.0.1:${authPort}`,
        smtpd_sasl_authenticated_header: 'yes',
        smtpd_tls_received_header: 'yes',
      },
    })
  } catch (err) {
    await postfix?.close()
    await dovecot?.close()
    await removeDir(dir)
    throw err
  }
  const pf = postfix
  const dc = dovecot
  return {
    port: pf.port,
    caFile: certFile,
    postfix: pf,
    async close() {
      await pf.close()
      await dc.close()
      await removeDir(dir)
    },
  }
}
