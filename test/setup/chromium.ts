/** Debian's chromium for the tests that drive a browser (puppeteer-core): a missing one fails the test naming the package, never skips it. */
import { execFileSync } from 'node:child_process';

export function chromiumPath(): string {
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    } catch {
      // try the next name
    }
  }
  throw new Error("this test needs a browser: install Debian's package 'chromium' (apt-get install -y chromium)");
}
