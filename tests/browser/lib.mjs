// Shared helpers for the browser tests: Debian's Chromium driven through Playwright's library.
// Each test script is run by a Rust integration test (tests/it/browser.rs) against a real daemon it started;
// the script reads SONAE_URL and the accounts from the environment, asserts, and exits non-zero on failure.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import path from 'node:path';

export { assert };

export const base = process.env.SONAE_URL;
if (!base) throw new Error('SONAE_URL is not set');

/** Starts Chromium with the flags the project uses everywhere. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** A new browser context with a phone- or desk-sized viewport, Japanese locale. */
export async function newPage(browser, { width = 1280, height = 900 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, locale: 'ja-JP' });
  return context.newPage();
}

/** Logs in by typing into the form and clicking the button, as a clerk does. */
export async function login(page, name, password) {
  await page.goto(`${base}/console/login`);
  await page.getByLabel('ユーザー名').fill(name);
  await page.getByLabel('パスワード').fill(password);
  await page.getByRole('button', { name: 'ログイン' }).click();
  await page.waitForLoadState('load');
}

/** Saves a full-page screenshot under SONAE_SCREENSHOTS (when set), for people to look at. */
export async function screenshot(page, name) {
  const dir = process.env.SONAE_SCREENSHOTS;
  if (dir) await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

/** Runs `body` with a fresh browser and always closes it; prints one line per step for the test log. */
export async function run(name, body) {
  const browser = await launch();
  const step = (s) => console.log(`[${name}] ${s}`);
  try {
    await body(browser, step);
    step('ok');
  } finally {
    await browser.close();
  }
}
