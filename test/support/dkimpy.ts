// dkimpy, Debian's python3-dkim (the library behind dkimverify and arcverify): an independent
// verifier of the DKIM signatures and ARC sets our mail leaves with. Its DNS function asks the
// test's dnsmasq directly (dnspython); the system resolver is left alone.
import { run } from './process.js'

const PRELUDE = `
import sys, dkim, dns.resolver
r = dns.resolver.Resolver(configure=False)
r.nameservers = ['127.0.0.1']
r.port = int(sys.argv[1])
def txt(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    ans = r.resolve(name.rstrip('.'), 'TXT', lifetime=timeout)
    return b''.join(ans[0].strings)
msg = sys.stdin.buffer.read()
`

// Prints "pass DOMAIN" and exits 0, or "fail ..." and exits 1.
const DKIM = `${PRELUDE}
d = dkim.DKIM(msg)
try:
    ok = d.verify(dnsfunc=txt)
except dkim.ValidationError as e:
    print('fail', e)
    sys.exit(1)
print(('pass ' if ok else 'fail ') + (d.domain or b'').decode())
sys.exit(0 if ok else 1)
`

// RFC 8617 §5.2: prints the chain's validation status, its number of sets and dkimpy's reason.
const ARC = `${PRELUDE}
cv, results, reason = dkim.arc_verify(msg, dnsfunc=txt)
print(cv.decode(), len(results), reason)
sys.exit(0 if cv == dkim.CV_Pass else 1)
`

async function python(script: string, message: Buffer, dnsPort: number): Promise<string> {
  const r = await run('/usr/bin/python3', ['-c', script, String(dnsPort)], { input: message, timeoutMs: 20_000 })
  return `${r.stdout.trim()}${r.stderr ? ` ${r.stderr.trim()}` : ''}`
}

/** dkimpy's verdict on the message's first DKIM-Signature: `pass DOMAIN` or `fail ...`. */
export const verifyDkim = (message: Buffer, dnsPort: number): Promise<string> => python(DKIM, message, dnsPort)

/** dkimpy's verdict on the message's ARC chain: `pass N reason`, `fail N reason` or `none 0 ...`. */
export const verifyArc = (message: Buffer, dnsPort: number): Promise<string> => python(ARC, message, dnsPort)
