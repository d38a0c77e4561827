// The ceiling under the Postfix table: smtp-server alone (the library our listeners are built on),
// in this process, with our early-talker pause before its 220 and nothing else: no policy, no
// spool, no fsync, no delivery; each message is read and dropped. smtp-source drives it as it
// drives the two servers. Whatever the appliance does, it cannot take mail faster than this, nor
// for less CPU, so a row's target (2x Postfix's delivered rate) can be set beside it.
import { SMTPServer } from 'smtp-server'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { setGreetingDelay } from '../services/smtp-ingress/src/greeting.js'
import { run } from '../test/support/process.js'
import { busyMeter } from './machine.js'

export type AloneRun = { accepted: number; cpuMs: number; machineBusy: number; error?: string }

export async function smtpServerAlone(opts: {
  greetingDelayMs: number
  sessions: number
  messages: number
  size: number
  reuse: boolean
}): Promise<AloneRun> {
  const server = new SMTPServer({
    banner: 'alone',
    disabledCommands: ['AUTH', 'STARTTLS'],
    authOptional: true,
    hideENHANCEDSTATUSCODES: false,
    hideSMTPUTF8: true,
    maxClients: 2000,
    disableReverseLookup: true,
    logger: false,
    onData(stream, _session, cb) {
      stream.on('data', () => undefined)
      stream.on('end', () => cb(null, 'Ok: dropped'))
    },
  })
  setGreetingDelay(server, opts.greetingDelayMs)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.server.address() as AddressInfo
  try {
    const args = ['-s', String(opts.sessions), '-m', String(opts.messages), '-l', String(opts.size)]
    args.push('-f', 'load@client.example', '-M', 'client.example', '-t', 'bench@ours.example')
    if (opts.reuse) args.push('-d')
    args.push('-C', '5', `127.0.0.1:${port}`)
    const cpu0 = process.cpuUsage()
    const busy = await busyMeter()
    const t0 = performance.now()
    const source = await run('/usr/sbin/smtp-source', args, { timeoutMs: 300_000 })
    const seconds = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    const machineBusy = await busy()
    return {
      accepted: opts.messages / seconds,
      cpuMs: (cpu.user + cpu.system) / 1000 / opts.messages,
      machineBusy,
      ...(source.code !== 0 && { error: `smtp-source exited ${source.code ?? source.signal}` }),
    }
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
