// The TLS certificate every listener serves: TLS_CERT/TLS_KEY, or a self-signed one generated
// on first start into CONFIG_DIR/tls and reused after. Re-read when the files change (renewals).
export { openCertificates, type Certificates, type TlsMaterial } from './certs.js'
export { servesRenewedCertificate } from './renewal.js'
