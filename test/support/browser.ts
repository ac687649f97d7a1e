import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';

/**
 * The dashboard tests' browser: Debian's chromium driven by playwright-core. CI installs chromium
 * and sets MCP_WARDEN_REQUIRE_BROWSER=1, so there a missing browser fails the run instead of skipping.
 */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser && process.env.MCP_WARDEN_REQUIRE_BROWSER === '1')
  throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)`);

/** Screenshots of the dashboard tests (ignored by git). */
export const SHOTS = new URL('../../test-artifacts/dashboard/', import.meta.url).pathname;

export interface OpenedPage {
  browser: Browser;
  page: Page;
  /** Console messages about the Content Security Policy: any is a failure of the page. */
  cspViolations: string[];
  /** Uncaught errors in the page. */
  pageErrors: string[];
}

/**
 * Headless chromium with one page. The flags keep it off this machine's closed network (background
 * networking, component updates, sync and QUIC would each try to reach Google's hosts).
 */
export async function openPage(viewport = { width: 1366, height: 800 }): Promise<OpenedPage> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = await browser.newPage({ viewport });
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];
  page.on('console', (m) => {
    if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  return { browser, page, cspViolations, pageErrors };
}
