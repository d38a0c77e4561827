// Every listener a hostile test attacks (the MX and the three submission ports), with the swaks
// arguments a real client sends there (alice, password "pw", on the submission ports).
import type { Mode } from './wire.js'

export type Listener = { name: string; service: string; listener: string; mode: Mode; real: string[] }

const AUTH = ['--auth', 'PLAIN', '--auth-user', 'alice@ours.example', '--auth-password', 'pw', '--from', 'alice@ours.example']

export const LISTENERS: Listener[] = [
  { name: ':25', service: 'smtp-ingress', listener: 'smtp', mode: 'plain', real: ['--from', 'a@remote.example'] },
  { name: ':587', service: 'submission', listener: 'submission', mode: 'plain', real: ['--tls', ...AUTH] },
  { name: ':465', service: 'submission', listener: 'submissions', mode: 'implicit', real: ['--tlsc', ...AUTH] },
  { name: 'SUBMISSION_ALT_PORT', service: 'submission', listener: 'alt', mode: 'implicit', real: ['--tlsc', ...AUTH] },
]
