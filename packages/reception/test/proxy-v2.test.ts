import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseProxyV2, ProxyHeaderError } from '@facteur/reception'

const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')
const header = (verCmd: number, family: number, block: Buffer) =>
  Buffer.concat([SIGNATURE, Buffer.from([verCmd, family, block.length >> 8, block.length & 0xff]), block])

test('PROXY with TCP over IPv4 and IPv6: the source address and port; the bytes after it are not its', () => {
  const v4 = Buffer.from([192, 0, 2, 10, 198, 51, 100, 1, 0x9c, 0x40, 0, 25])
  assert.deepEqual(parseProxyV2(Buffer.concat([header(0x21, 0x11, v4), Buffer.from('EHLO x\r\n')])), {
    length: 28,
    source: { address: '192.0.2.10', port: 40000 },
  })
  const v6 = Buffer.alloc(36)
  Buffer.from('20010db8000000000000000000000007', 'hex').copy(v6, 0)
  v6.writeUInt16BE(40001, 32)
  assert.deepEqual(parseProxyV2(header(0x21, 0x21, v6))?.source, { address: '2001:db8::7', port: 40001 })
  // TLVs after the addresses (HAProxy's unique id, SSL info ...) belong to the header.
  assert.equal(parseProxyV2(header(0x21, 0x11, Buffer.concat([v4, Buffer.from([0x05, 0x00, 0x02, 0x61, 0x62])])))?.length, 33)
})

test('LOCAL (a health check), UNSPEC and UNIX headers name no client; an incomplete one waits', () => {
  assert.deepEqual(parseProxyV2(header(0x20, 0x00, Buffer.alloc(0))), { length: 16, source: null })
  assert.deepEqual(parseProxyV2(header(0x21, 0x31, Buffer.alloc(216))), { length: 232, source: null })
  const full = header(0x21, 0x11, Buffer.alloc(12))
  for (const n of [0, 12, 15, 27]) assert.equal(parseProxyV2(full.subarray(0, n)), undefined, `${n} bytes`)
})

test('another version or command, an address block too short for its family, or too long: ProxyHeaderError', () => {
  for (const bad of [
    header(0x31, 0x11, Buffer.alloc(12)),
    header(0x22, 0x11, Buffer.alloc(12)),
    header(0x21, 0x11, Buffer.alloc(8)),
    header(0x21, 0x21, Buffer.alloc(12)),
    header(0x21, 0x11, Buffer.alloc(2000)),
  ])
    assert.throws(() => parseProxyV2(bad), ProxyHeaderError)
})
