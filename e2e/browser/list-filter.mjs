// The list filter, with JavaScript off (the read-only views need none) and on a
// phone-sized screen, signed in as an operator (OPERATOR_TOKEN: every customer's
// checkouts): filtering by customer, then by status, shows only the matching checkouts,
// and the page never scrolls sideways. e2e/tests/console.rs places the checkouts first:
// FILTER_COMPLETED's checkout completed, FILTER_CANCELLED's was declined.
import { check, env, run, signIn } from "./browser.mjs";

const completed = process.env.FILTER_COMPLETED;
const cancelled = process.env.FILTER_CANCELLED;

async function rows(page) {
  return page.locator("#checkouts tbody tr[data-checkout]").evaluateAll((trs) =>
    trs.map((tr) => ({
      customer: tr.querySelector('[data-label="Customer"]').textContent.trim(),
      status: tr.querySelector('[data-label="Status"] .status').textContent.trim(),
    })),
  );
}

await run("the list filters by customer and by status", async (browser) => {
  check(completed && cancelled, "FILTER_COMPLETED and FILTER_CANCELLED name the customers");
  const page = await browser.newPage({
    javaScriptEnabled: false,
    viewport: { width: 390, height: 844 },
    isMobile: true,
  });
  await signIn(page, env("OPERATOR_TOKEN"));
  const all = await rows(page);
  check(all.length >= 2, `the list shows both checkouts: ${JSON.stringify(all)}`);
  check(
    await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    "the list fits a phone's width",
  );

  await page.locator("#f-customer").fill(completed);
  await Promise.all([
    page.waitForURL(/customer=/),
    page.getByRole("button", { name: "Filter" }).click(),
  ]);
  let shown = await rows(page);
  check(
    shown.length === 1 && shown[0].customer === completed && shown[0].status === "completed",
    `filtered by ${completed}: ${JSON.stringify(shown)}`,
  );

  await page.locator("#f-customer").fill("");
  await page.locator("#f-status").selectOption("cancelled");
  await Promise.all([
    page.waitForURL(/status=cancelled/),
    page.getByRole("button", { name: "Filter" }).click(),
  ]);
  shown = await rows(page);
  check(shown.length >= 1, "the cancelled checkout is listed");
  check(
    shown.every((row) => row.status === "cancelled"),
    `only cancelled checkouts: ${JSON.stringify(shown)}`,
  );
  check(
    shown.some((row) => row.customer === cancelled) && !shown.some((row) => row.customer === completed),
    `the declined checkout, not the completed one: ${JSON.stringify(shown)}`,
  );

  // A customer's link in the list filters by that customer too.
  await Promise.all([
    page.waitForURL(/customer=/),
    page.getByRole("link", { name: cancelled, exact: true }).first().click(),
  ]);
  shown = await rows(page);
  check(
    shown.length === 1 && shown[0].customer === cancelled,
    `the customer's link filters by it: ${JSON.stringify(shown)}`,
  );
});
