// A checkout with a declined card, placed through the console's form in slow motion by
// a signed-in customer (CUSTOMER, with CUSTOMER_TOKEN): the page opens while the saga
// still runs, and the compensation (cancel the order) appears on the timeline live,
// pushed by server-sent events, until the checkout ends CANCELLED with card_declined;
// the waterfall draws the steps and the compensation on one time axis.
// With CONSOLE_SCREENSHOT=path, saves the final page there (docs/console.png in the
// README).
import { check, env, run, signIn } from "./browser.mjs";

await run("a declined card unwinds live on the timeline", async (browser) => {
  const customer = env("CUSTOMER");
  const token = env("CUSTOMER_TOKEN");
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await signIn(page, token);
  check(
    (await page.locator("#place-customer").textContent()) === customer,
    "the form places checkouts for the signed-in customer",
  );
  await page.getByLabel("Product").selectOption("MUG-1");
  await page.getByLabel("Quantity").fill("2");
  await page.getByLabel("Payment token").selectOption("tok_chargeDeclined");
  await page.getByLabel("Ship to").selectOption("FR");
  await page.getByRole("radio", { name: /^orchestrated/ }).check();
  await page.getByLabel(/Slow motion/).check();
  await Promise.all([
    page.waitForURL(/\/checkouts\/[0-9a-f-]{36}$/),
    page.getByRole("button", { name: "Place checkout" }).click(),
  ]);

  // Opened while the saga runs: the page follows it.
  const live = page.locator("#live");
  check(
    (await live.getAttribute("data-live")) === "true",
    `the checkout had already ended when its page opened (status ${await page
      .locator("#checkout-status")
      .textContent()}); slow motion did not hold the calls`,
  );
  check(
    (await page.locator('[data-compensation="create_order"][data-status="compensated"]').count()) === 0,
    "the order was already cancelled when the page opened",
  );

  // The compensation appears, then the end, without reloading the page.
  const undo = page.locator('[data-compensation="create_order"]');
  await undo.waitFor({ timeout: 20_000 });
  check((await undo.textContent()).includes("Cancel the order"), "the compensation is named");
  await page.locator('[data-compensation="create_order"][data-status="compensated"]').waitFor({ timeout: 20_000 });
  await page.locator('#live .checkout[data-status="cancelled"]').waitFor({ timeout: 20_000 });
  check(
    Number(await live.getAttribute("data-updates")) >= 1,
    "the timeline changed without a server-sent event",
  );
  check(
    (await page.locator(".facts").textContent()).includes(customer),
    "the checkout is the signed-in customer's",
  );
  check(
    (await page.locator("#failure-reason").textContent()) === "card_declined",
    "the failure reason is card_declined",
  );
  const charge = page.locator('[data-step="charge_payment"]');
  check((await charge.getAttribute("data-status")) === "failed", "the charge step failed");
  const error = await charge.locator(".message").textContent();
  check(error.includes("declined"), `the charge step shows its last error: ${error}`);
  for (const skipped of ["reserve_stock", "create_shipment", "confirm_order"]) {
    check(
      (await page.locator(`[data-step="${skipped}"]`).getAttribute("data-status")) === "skipped",
      `${skipped} was never reached`,
    );
  }
  await page.waitForFunction(() => document.getElementById("live").dataset.live === "ended");
  // The waterfall draws the same story on one time axis.
  const bar = (name) => page.locator(`#waterfall [data-bar="${name}"]`);
  check((await bar("charge_payment").getAttribute("class")) === "step failed", "the charge's bar is failed");
  check((await bar("undo create_order").count()) === 1, "the waterfall draws the order's cancellation");
  check((await bar("reserve_stock").count()) === 0, "a step never reached has no bar");

  // The page needs no script to show the same ending (a new browser context: it signs
  // in again, without JavaScript too).
  const again = await browser.newPage({ javaScriptEnabled: false });
  await signIn(again, token);
  await again.goto(page.url());
  check(
    (await again.locator("#checkout-status").textContent()) === "cancelled",
    "without JavaScript the page shows the checkout cancelled",
  );
  check(
    (await again.locator('#waterfall [data-bar="undo create_order"]').count()) === 1,
    "without JavaScript the waterfall is drawn too",
  );
  await again.close();

  if (process.env.CONSOLE_SCREENSHOT) {
    await page.screenshot({ path: process.env.CONSOLE_SCREENSHOT, fullPage: true });
    console.log(`screenshot: ${process.env.CONSOLE_SCREENSHOT}`);
  }
});
