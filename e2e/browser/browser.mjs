// What the browser tests share: the system's Chromium, headless, driven by
// playwright-core (no browser download: CI installs Debian's `chromium` package), the
// console's address from CONSOLE_URL (set by e2e/tests/console.rs), and signing in.
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

/** The value of environment variable `name`; fails the test when it is not set. */
export function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run these through \`cargo test -p e2e --test console\``);
  }
  return value;
}

/**
 * Signs `page`'s browser context in to the console with `token`, through the sign-in
 * form as a person would (it works without JavaScript), and waits for the checkouts.
 */
export async function signIn(page, token) {
  await page.goto(consoleUrl() + "/sign-in");
  await page.getByLabel("Your token").fill(token);
  await Promise.all([
    page.waitForURL(consoleUrl() + "/"),
    page.getByRole("button", { name: "Sign in" }).click(),
  ]);
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
