// docker-compose.yml against env.example: every setting a user can put in .env reaches the
// containers (compose substitutes it), so `.env` overrides any default in docker mode too.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { ROOT } from './support/appliance.js'

test('docker-compose.yml passes every variable of env.example to the containers, or fixes it on purpose', async () => {
  const example = await fs.readFile(path.join(ROOT, 'env.example'), 'utf8')
  const compose = await fs.readFile(path.join(ROOT, 'docker-compose.yml'), 'utf8')
  const variables = [...example.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1])
  assert.ok(variables.length > 50)
  // Either substituted from .env (${VAR...}) or set by the compose file itself (VAR: value).
  const missing = variables.filter(
    (v) => !compose.includes(`\${${v}:-`) && !compose.includes(`\${${v}-`) && !new RegExp(`^\\s+${v}: `, 'm').test(compose),
  )
  assert.deepEqual(missing, [], 'add these to x-settings in docker-compose.yml (as VAR: ${VAR:-})')
})

test('the containers cannot be told to listen elsewhere than the ports compose publishes', async () => {
  const compose = await fs.readFile(path.join(ROOT, 'docker-compose.yml'), 'utf8')
  for (const [name, value] of Object.entries({
    SMTP_PORT: '"25"',
    SUBMISSION_PORT: '"587"',
    SUBMISSIONS_PORT: '"465"',
    HEALTH_LISTEN: '0.0.0.0',
    FILTER_URL: 'http://filter:8030',
    SUPERVISOR_MODE: 'docker',
  }))
    assert.match(compose, new RegExp(`^  ${name}: ${value.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'), name)
})
