import winston from 'winston'
import { countLogEvent } from '@facteur/metrics'
import { BatchedStdout } from './stdout.js'

export type Logger = winston.Logger

export function createLogger(opts: {
  service: string
  level?: string
  format?: 'auto' | 'json' | 'text'
  stream?: NodeJS.WritableStream
}): Logger {
  const json = opts.format === 'json' || (opts.format !== 'text' && !process.stdout.isTTY)
  const format = json
    ? winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: false }), winston.format.json())
    : winston.format.combine(
        winston.format.timestamp({ format: 'HH:mm:ss.SSS' }),
        winston.format.printf(({ timestamp, level, message, service, ...rest }) => {
          const fields = Object.entries(rest)
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
            .join(' ')
          return `${String(timestamp)} ${String(service)} ${level}: ${String(message)}${fields ? ' ' + fields : ''}`
        }),
      )
  // Every line, whatever LOG_LEVEL lets through, feeds the outcome counters served at /metrics.
  const counted = winston.format((info) => (countLogEvent(info), info))()
  // The transport drops the lines below LOG_LEVEL, but only after the formats ran: dropped here,
  // a debug line per connection costs no timestamp and no printf.
  const shown = winston.format((info) => logger.isLevelEnabled(info.level) && info)()
  const logger = winston.createLogger({
    level: opts.level ?? 'info',
    defaultMeta: { service: opts.service },
    format: winston.format.combine(counted, shown, format),
    // stdout, one write(2) per turn of the event loop (stdout.ts); a given stream, a line at a time.
    transports: [opts.stream ? new winston.transports.Stream({ stream: opts.stream }) : new BatchedStdout()],
  })
  return logger
}
