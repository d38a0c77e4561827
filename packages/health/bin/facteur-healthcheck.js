#!/usr/bin/env node
// The Docker HEALTHCHECK of every Facteur service image: GET /healthz on the health port of the
// service FACTEUR_SERVICE names, found from the same settings the service reads. Exit 0 on 200
// (ok or degraded), 1 otherwise; the body goes to `docker inspect`. Node, so no curl is needed.
import http from 'node:http'
import { loadConfig, healthEndpoint } from '@facteur/config'

const fail = (message) => {
  process.stdout.write(`facteur-healthcheck: ${message}\n`)
  process.exit(1)
}

const service = process.env.FACTEUR_SERVICE ?? ''
let endpoint = null
try {
  endpoint = healthEndpoint(loadConfig(process.env), service)
} catch (err) {
  fail(err.message)
}
if (!endpoint) fail(`FACTEUR_SERVICE=${JSON.stringify(service)} is not a service with a health port`)
// A wildcard listener is reached on loopback.
const host = endpoint.listen === '0.0.0.0' || endpoint.listen === '' ? '127.0.0.1' : endpoint.listen === '::' ? '::1' : endpoint.listen
const req = http.get({ host, port: endpoint.port, path: '/healthz', timeout: 4000 }, (res) => {
  let body = ''
  res.setEncoding('utf8')
  res.on('data', (chunk) => (body += chunk))
  res.on('end', () => {
    process.stdout.write(`${res.statusCode} ${body.slice(0, 2000)}\n`)
    process.exit(res.statusCode === 200 ? 0 : 1)
  })
})
req.on('timeout', () => req.destroy(new Error(`no answer from ${host}:${endpoint.port} within 4s`)))
req.on('error', (err) => fail(err.message))
