// GET a service's JSON endpoint (/healthz, /metrics?format=json) within a time limit.
import http from 'node:http'

export type Probe = (url: string, timeoutMs: number) => Promise<{ code: number; body: unknown }>

export const probe: Probe = (url, timeoutMs) =>
  new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => {
        try {
          resolve({ code: res.statusCode ?? 0, body: JSON.parse(text) })
        } catch {
          reject(new Error(`HTTP ${res.statusCode}: not JSON`))
        }
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', reject)
  })
