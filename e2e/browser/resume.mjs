// An operator resumes a parked checkout (PARKED, a NEEDS_ATTENTION checkout of CUSTOMER)
// from the console: the "Needs attention" list shows it, its page offers Resume, the
// confirmation page asks first (Cancel goes back and changes nothing), and the confirmed
// resume shows the outcome on the checkout's page. The customer it belongs to sees the
// checkout but no Resume, and the confirmation page refuses them.
import { check, consoleUrl, env, run, signIn } from "./browser.mjs";

await run("an operator resumes a parked checkout after confirming", async (browser) => {
  const parked = env("PARKED");
  const operator = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await signIn(operator, env("OPERATOR_TOKEN"));

  await Promise.all([
    operator.waitForURL(/status=needs-attention/),
    operator.locator("#nav-attention").click(),
  ]);
  const row = operator.locator(`a[href="/checkouts/${parked}"]`);
  check((await row.count()) >= 1, "the parked checkout is in the Needs attention list");
  await Promise.all([operator.waitForURL(new RegExp(`/checkouts/${parked}$`)), row.first().click()]);
  check(
    (await operator.locator("#checkout-status").textContent()) === "needs-attention",
    "the checkout's page shows it parked",
  );

  // Asked first; Cancel goes back and the checkout stays parked.
  await Promise.all([operator.waitForURL(/\/resume$/), operator.locator("#resume").click()]);
  check(
    (await operator.locator("h1").textContent()) === "Resume this checkout?",
    "the resume asks for confirmation",
  );
  await Promise.all([
    operator.waitForURL(new RegExp(`/checkouts/${parked}$`)),
    operator.getByRole("link", { name: "Cancel" }).click(),
  ]);
  check(
    (await operator.locator("#checkout-status").textContent()) === "needs-attention",
    "cancelling the confirmation changed nothing",
  );

  await Promise.all([operator.waitForURL(/\/resume$/), operator.locator("#resume").click()]);
  await Promise.all([
    operator.waitForURL(/notice=resumed/),
    operator.locator("#confirm-resume").click(),
  ]);
  check((await operator.locator("#resumed").count()) === 1, "the page says it was resumed");
  // The refund goes through this time: the checkout ends cancelled, its undoing drawn
  // on the waterfall.
  await operator.locator('#live .checkout[data-status="cancelled"]').waitFor({ timeout: 30_000 });
  check((await operator.locator("#resume").count()) === 0, "an ended checkout offers no resume");
  const undo = operator.locator('#waterfall [data-bar="undo charge_payment"]');
  check((await undo.count()) === 1, "the waterfall draws the refund");

  // The customer whose checkout it is sees it, but may not resume it.
  const customer = await browser.newPage();
  await signIn(customer, env("CUSTOMER_TOKEN"));
  await customer.goto(`${consoleUrl()}/checkouts/${parked}`);
  check((await customer.locator("#checkout-status").count()) === 1, "the customer sees the checkout");
  check((await customer.locator("#resume").count()) === 0, "a customer is offered no resume");
  const refused = await customer.goto(`${consoleUrl()}/checkouts/${parked}/resume`);
  check(refused.status() === 403, `the confirmation refuses a customer (${refused.status()})`);
  await customer.close();
});
