// An operator settles dead letters from the console with JavaScript off (every step is a
// link or a form): the "Dead letters" page lists every service's letters; Retry… asks
// first (Cancel changes nothing), then the retry is shown done and the letter's checkout
// completes; Discard… asks why and keeps the reason; a letter its service cannot handle
// is refused, and the page says why in words. A customer is offered none of it.
//
// RETRY_LETTER is inventory-svc's parked PaymentCaptured of PARKED_CHECKOUT, whose cause
// is fixed already; DISCARD_LETTER payment-svc's unreadable message, UNREADABLE_LETTER the
// orchestrator tracker's copy of it.
import { check, consoleUrl, env, run, signIn } from "./browser.mjs";

/** Reloads the checkout's page until its status reads `status` (30 s at most). */
async function waitForStatus(page, checkout, status) {
  let seen = "";
  for (let i = 0; i < 60; i++) {
    await page.goto(`${consoleUrl()}/checkouts/${checkout}`);
    seen = await page.locator("#checkout-status").textContent();
    if (seen === status) {
      return;
    }
    await page.waitForTimeout(500);
  }
  throw new Error(`checkout ${checkout} is ${seen}, not ${status}`);
}

await run("an operator retries and discards dead letters after confirming", async (browser) => {
  const retryId = env("RETRY_LETTER");
  const discardId = env("DISCARD_LETTER");
  const unreadableId = env("UNREADABLE_LETTER");
  const checkout = env("PARKED_CHECKOUT");
  const context = await browser.newContext({
    javaScriptEnabled: false,
    viewport: { width: 1200, height: 900 },
  });
  const operator = await context.newPage();
  await signIn(operator, env("OPERATOR_TOKEN"));

  await Promise.all([
    operator.waitForURL(/\/dead-letters$/),
    operator.locator("#nav-dead-letters").click(),
  ]);
  const toRetry = operator.locator(`#inventory-${retryId}`);
  check((await toRetry.getAttribute("data-state")) === "parked", "inventory-svc's letter is listed, parked");
  check((await toRetry.textContent()).includes("PaymentCaptured"), "the row names the event");
  check(
    (await toRetry.locator(`a[href="/checkouts/${checkout}"]`).count()) === 1,
    "the row links the letter's checkout",
  );
  check(
    (await operator.locator(`#payment-${discardId}`).getAttribute("data-state")) === "parked",
    "payment-svc's letter is listed, parked",
  );
  check(
    (await operator.locator(`#orchestrator-${unreadableId}`).getAttribute("data-state")) === "parked",
    "the orchestrator's letter is listed, parked",
  );

  // Asked first; Cancel goes back and the letter stays parked.
  await Promise.all([
    operator.waitForURL(/\/retry$/),
    operator.locator(`#retry-inventory-${retryId}`).click(),
  ]);
  check(
    (await operator.locator("h1").textContent()) === "Retry this dead letter?",
    "the retry asks for confirmation",
  );
  check((await operator.locator("main").textContent()).includes("PaymentCaptured"), "it says which letter");
  await Promise.all([
    operator.waitForURL(/\/dead-letters#/),
    operator.getByRole("link", { name: "Cancel" }).click(),
  ]);
  check((await toRetry.getAttribute("data-state")) === "parked", "cancelling changed nothing");

  await Promise.all([
    operator.waitForURL(/\/retry$/),
    operator.locator(`#retry-inventory-${retryId}`).click(),
  ]);
  await Promise.all([
    operator.waitForURL(/done=retried/),
    operator.locator("#confirm-retry").click(),
  ]);
  check((await operator.locator("#outcome").textContent()).startsWith("Retried"), "the page says it was retried");
  check((await toRetry.getAttribute("data-state")) === "retried", "the letter is retried");
  check((await toRetry.textContent()).includes("handled"), "the row says it was handled");
  check((await operator.locator(`#retry-inventory-${retryId}`).count()) === 0, "a settled letter offers no retry");
  // The event took effect: its checkout moves on and completes.
  await waitForStatus(operator, checkout, "completed");

  // Discard asks why, and the reason stays with the letter.
  const reason = "garbage from a test client, discarded in the browser";
  await operator.goto(`${consoleUrl()}/dead-letters`);
  await Promise.all([
    operator.waitForURL(/\/discard$/),
    operator.locator(`#discard-payment-${discardId}`).click(),
  ]);
  check(
    (await operator.locator("h1").textContent()) === "Discard this dead letter?",
    "the discard asks for confirmation",
  );
  check((await operator.locator("#reason").getAttribute("required")) !== null, "a reason is required");
  await operator.locator("#reason").fill(reason);
  await Promise.all([
    operator.waitForURL(/done=discarded/),
    operator.locator("#confirm-discard").click(),
  ]);
  const discarded = operator.locator(`#payment-${discardId}`);
  check((await operator.locator("#outcome").textContent()).startsWith("Discarded"), "the page says it was discarded");
  check((await discarded.getAttribute("data-state")) === "discarded", "the letter is discarded");
  check((await discarded.textContent()).includes(reason), "the row keeps the reason");

  // A letter its service cannot handle: refused, and the page says why in words.
  await Promise.all([
    operator.waitForURL(/\/retry$/),
    operator.locator(`#retry-orchestrator-${unreadableId}`).click(),
  ]);
  await operator.locator("#confirm-retry").click();
  await operator.locator("#refusal").waitFor();
  check(
    (await operator.locator("#refusal").textContent()).includes("no event the service can read"),
    "the refusal is explained",
  );
  check(
    (await operator.locator("#refusal-message").textContent()).includes("DEAD_LETTER_UNREADABLE"),
    "the service's own reason is shown",
  );
  await operator.goto(`${consoleUrl()}/dead-letters`);
  check(
    (await operator.locator(`#orchestrator-${unreadableId}`).getAttribute("data-state")) === "parked",
    "a refused retry changed nothing",
  );
  await context.close();

  // A customer is offered no dead letters, and their pages refuse them.
  const customer = await browser.newPage();
  await signIn(customer, env("CUSTOMER_TOKEN"));
  check((await customer.locator("#nav-dead-letters").count()) === 0, "a customer has no Dead letters link");
  for (const path of ["/dead-letters", `/dead-letters/inventory/${retryId}/retry`, `/dead-letters/payment/${discardId}/discard`]) {
    const refused = await customer.goto(consoleUrl() + path);
    check(refused.status() === 403, `${path} refuses a customer (${refused.status()})`);
  }
  await customer.close();
});
