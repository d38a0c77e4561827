// The supervisor's status page in a real browser: Debian's chromium, headless, driven by
// playwright-core (which brings no browser of its own). Returns what a person sees in each
// service's row and keeps a screenshot as a test artifact under test/artifacts/.
import fs from 'node:fs/promises'
import path from 'node:path'
import { chromium } from 'playwright-core'
import { ROOT } from './appliance.js'

export const CHROMIUM = '/usr/bin/chromium'
export const ARTIFACTS = path.join(ROOT, 'test', 'artifacts')

/** One service's row as rendered: the texts of its cells, and whether the row is on screen. */
export type StatusRow = { service: string; visible: boolean; state: string; health: string; badge: string; restarts: string }
export type RenderedStatusPage = { title: string; heading: string; rows: StatusRow[]; screenshot: string }

/** Null when chromium is there, else why the browser checks cannot run. */
export async function browserUnavailable(): Promise<string | null> {
  try {
    await fs.access(CHROMIUM, fs.constants.X_OK)
    return null
  } catch {
    return `no ${CHROMIUM} (Debian package chromium)`
  }
}

/** Loads url in headless chromium, reads every service row and saves a full-page screenshot as `name`.png. */
export async function renderStatusPage(url: string, name: string): Promise<RenderedStatusPage> {
  // --no-sandbox: the tests run as root, where chromium's sandbox refuses to start.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'], timeout: 120_000 })
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 800 } })
    const response = await page.goto(url, { waitUntil: 'load', timeout: 60_000 })
    if (!response?.ok()) throw new Error(`GET ${url}: HTTP ${response?.status() ?? 'no response'}`)
    const rows: StatusRow[] = []
    for (const row of await page.locator('tr[data-service]').all()) {
      const cells = row.locator('th, td')
      rows.push({
        service: (await row.getAttribute('data-service')) ?? '',
        visible: await row.isVisible(),
        state: (await cells.nth(1).innerText()).trim(),
        health: (await cells.nth(2).innerText()).trim(),
        badge: (await cells.nth(2).locator('.badge').first().innerText()).trim(),
        restarts: (await cells.nth(3).innerText()).trim(),
      })
    }
    await fs.mkdir(ARTIFACTS, { recursive: true })
    const screenshot = path.join(ARTIFACTS, `${name}.png`)
    await page.screenshot({ path: screenshot, fullPage: true })
    return { title: await page.title(), heading: (await page.locator('h1').innerText()).trim(), rows, screenshot }
  } finally {
    await browser.close()
  }
}
