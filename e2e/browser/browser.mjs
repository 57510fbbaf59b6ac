// What both browser tests share: the system's Chromium, headless, driven by
// playwright-core (no browser download: CI installs Debian's `chromium` package), and
// the console's address from CONSOLE_URL (set by e2e/tests/console.rs).
import { chromium } from "playwright-core";

/** The console under test, e.g. http://127.0.0.1:40123 (no trailing slash). */
export function consoleUrl() {
  const url = process.env.CONSOLE_URL;
  if (!url) {
    throw new Error("CONSOLE_URL is not set: run these through `cargo test -p e2e --test console`");
  }
  return url.replace(/\/$/, "");
}

/** Launches headless Chromium: CHROMIUM_BIN, else Debian's /usr/bin/chromium. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Fails the test with `message` unless `condition` holds. */
export function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

/** Runs `test`, closing the browser whatever happens; exits non-zero on failure. */
export async function run(name, test) {
  const browser = await launch();
  try {
    await test(browser);
    console.log(`ok: ${name}`);
  } catch (error) {
    console.error(`FAILED: ${name}\n${error.stack || error}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
