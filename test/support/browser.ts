/**
 * A real browser for the dashboard tests: Debian's `chromium` driven by playwright-core (never
 * `playwright install`). Installs the Debian package when it is missing and we are root, as
 * deploy/ensure-nats.sh does for nats-server; otherwise says exactly what to install.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { ROOT } from './procs.js';

export const CHROMIUM = '/usr/bin/chromium';
/** Where tests save screenshots (gitignored). */
export const RESULTS = join(ROOT, 'test-results');

/** Makes sure /usr/bin/chromium exists (apt-get install -y chromium as root), else throws saying how. */
export function ensureChromium(): string {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  if (process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    process.stderr.write('medvault tests: chromium is missing; installing Debian\'s package\n');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    // npm test installs it before the files run; a single file run alone installs it here,
    // waiting for dpkg's lock rather than failing when another install holds it
    const apt = (...args: string[]) => execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', ...args], { stdio: 'ignore', env, timeout: 900_000 });
    try {
      apt('install', '-y', 'chromium');
    } catch {
      apt('update');
      apt('install', '-y', 'chromium');
    }
    if (existsSync(CHROMIUM)) return CHROMIUM;
  }
  throw new Error('chromium is not installed. Install it with: sudo apt-get install -y chromium');
}

export interface TestBrowser {
  browser: Browser | null;
  context: BrowserContext;
  close(): Promise<void>;
}

/** Launches headless chromium with a fresh profile; close() removes the profile. */
export async function launchBrowser(): Promise<TestBrowser> {
  const executablePath = ensureChromium();
  mkdirSync(RESULTS, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'mv-chromium-'));
  // A fresh --user-data-dir: playwright-core takes it as the persistent context's folder.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1360, height: 900 },
  });
  const browser = context.browser();
  return {
    browser,
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
