import { existsSync, mkdirSync } from 'node:fs';
import { expect } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from '@actionedx/testkit';

/** Debian's Chromium: nothing is downloaded (scripts/test.sh installs the package). */
export const CHROMIUM = '/usr/bin/chromium';
/** Screenshots of the browser tests (not committed). */
export const SHOTS = `${ROOT}test-results/web`;
/** How long a browser test waits for what the page should show. */
export const WAIT = { timeout: 15_000 };

/** Headless Chromium with the flags these machines need; a clear error when the package is missing. */
export async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is missing: ${CHROMIUM} does not exist. Install the Debian package \`chromium\` (apt-get install -y chromium); scripts/test.sh does this.`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 25_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
}

/** A full-page screenshot as test-results/web/<name>.png. */
export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

/** Signs the page in with an API key or a token, and waits for its socket. */
export async function signIn(page: Page, credential: string): Promise<void> {
  await page.locator('#sign-in').waitFor({ state: 'visible', ...WAIT });
  await page.fill('#credential', credential);
  await page.click('#sign-in-form button[type=submit]');
  await expect.poll(() => page.textContent('#conn-status'), WAIT).toBe('Connected');
}
