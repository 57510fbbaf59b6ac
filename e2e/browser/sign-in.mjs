// The console acts as the person signed in, in a real browser:
// - a visitor without a session lands on the sign-in page and sees no checkout, and
//   the live stream answers 401;
// - a token that is no JWT, and one the shop refuses (signed with another key), do not
//   sign in;
// - a customer (ALICE_TOKEN) sees their own checkout (ALICE_CHECKOUT) and not another
//   customer's (BOB_CHECKOUT), even by its address; the session cookie is HttpOnly,
//   SameSite=Strict, Path=/;
// - a page of another origin (a server of this script, on another port of the same
//   host, so the browser does send the SameSite=Strict cookie) cannot place a checkout
//   through the console, even knowing the CSRF token: 403, nothing placed; nor frame it;
// - signing out ends the session;
// - an operator (OPERATOR_TOKEN) sees every customer's checkouts.
import http from "node:http";

import { check, consoleUrl, env, run, signIn } from "./browser.mjs";

const aliceToken = env("ALICE_TOKEN");
const operatorToken = env("OPERATOR_TOKEN");
const forgedToken = env("FORGED_TOKEN");
const aliceCheckout = env("ALICE_CHECKOUT");
const bobCheckout = env("BOB_CHECKOUT");

/** The checkout ids of the list's rows. */
async function listed(page) {
  return page
    .locator("#checkouts tbody tr[data-checkout]")
    .evaluateAll((rows) => rows.map((row) => row.dataset.checkout));
}

/** Serves `html` at http://127.0.0.1:<free port>/ until closed. */
async function serve(html) {
  const server = http.createServer((_, response) => {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(html);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}

function checkSecurityHeaders(response, what) {
  const headers = response.headers();
  const csp = headers["content-security-policy"] || "";
  check(csp.includes("default-src 'self'"), `${what}: CSP default-src 'self': ${csp}`);
  check(csp.includes("frame-ancestors 'none'"), `${what}: CSP frame-ancestors 'none': ${csp}`);
  check(headers["x-frame-options"] === "DENY", `${what}: X-Frame-Options DENY`);
  check(headers["x-content-type-options"] === "nosniff", `${what}: X-Content-Type-Options`);
  check(headers["referrer-policy"] === "same-origin", `${what}: Referrer-Policy`);
}

await run("the console acts as the person signed in", async (browser) => {
  const context = await browser.newContext();
  const page = await context.newPage();

  // Nobody signed in: the sign-in page, and no checkout anywhere.
  const first = await page.goto(consoleUrl() + "/");
  check(page.url() === consoleUrl() + "/sign-in", `/ without a session went to ${page.url()}`);
  checkSecurityHeaders(first, "the sign-in page");
  let text = await page.content();
  check(!text.includes(aliceCheckout) && !text.includes(bobCheckout), "no checkout before sign-in");
  await page.goto(consoleUrl() + "/checkouts/" + aliceCheckout);
  check(page.url() === consoleUrl() + "/sign-in", "a checkout's page without a session goes to sign-in");
  text = await page.content();
  check(!text.includes("checkout-status"), "no checkout shown before sign-in");
  const stream = await page.request.get(consoleUrl() + "/checkouts/" + aliceCheckout + "/events");
  check(stream.status() === 401, `the live stream without a session: ${stream.status()}`);

  // Tokens that do not sign in.
  for (const [token, expected] of [
    ["not-a-token", "not a JWT"],
    [forgedToken, "refused"],
  ]) {
    await page.goto(consoleUrl() + "/sign-in");
    await page.getByLabel("Your token").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#sign-in-error").waitFor();
    const error = await page.locator("#sign-in-error").textContent();
    check(error.includes(expected), `signing in with a bad token says ${expected}: ${error}`);
    check(
      !(await context.cookies()).some((cookie) => cookie.name === "console_session"),
      "a refused token leaves no session",
    );
  }

  // Alice: her checkout, not Bob's.
  await signIn(page, aliceToken);
  check((await page.locator("#signed-in-as").textContent()) === "alice", "signed in as alice");
  check((await page.locator("#signed-in-role").textContent()).includes("customer"), "as a customer");
  let ids = await listed(page);
  check(ids.includes(aliceCheckout), `alice sees her checkout: ${ids}`);
  check(!ids.includes(bobCheckout), `alice does not see bob's: ${ids}`);
  check(!(await page.content()).includes(bobCheckout), "bob's checkout id is nowhere on alice's page");
  check((await page.locator("#f-customer").count()) === 0, "a customer gets no customer filter");
  const home = await page.goto(consoleUrl() + "/");
  checkSecurityHeaders(home, "the checkouts page");
  const session = (await context.cookies()).find((cookie) => cookie.name === "console_session");
  check(session, "a session cookie is set");
  check(session.httpOnly, "the session cookie is HttpOnly");
  check(session.sameSite === "Strict", `the session cookie is SameSite=Strict: ${session.sameSite}`);
  check(session.path === "/", `the session cookie's path is /: ${session.path}`);
  const bobs = await page.goto(consoleUrl() + "/checkouts/" + bobCheckout);
  check(bobs.status() === 404, `bob's checkout by its address, as alice: ${bobs.status()}`);
  check((await page.locator("#checkout-status").count()) === 0, "bob's checkout is not shown");
  const own = await page.goto(consoleUrl() + "/checkouts/" + aliceCheckout);
  check(own.status() === 200, `alice's own checkout: ${own.status()}`);
  checkSecurityHeaders(own, "a checkout's page");

  // Another origin's page, with the cookie (same site) and even the CSRF token: refused.
  await page.goto(consoleUrl() + "/");
  const csrf = await page.locator('#place input[name="csrf"]').getAttribute("value");
  const before = (await listed(page)).length;
  const evil = await serve(`<!doctype html><title>evil</title>
<form id="attack" method="post" action="${consoleUrl()}/checkouts">
<input type="hidden" name="csrf" value="${csrf}">
<input type="hidden" name="sku" value="TEE-1"><input type="hidden" name="quantity" value="20">
<input type="hidden" name="token" value="tok_visa"><input type="hidden" name="country" value="FR">
<button type="submit">Win a prize</button></form>
<iframe id="framed" src="${consoleUrl()}/"></iframe>`);
  try {
    await page.goto(evil.url);
    // The console refuses to be framed: the frame holds no console page.
    await page.waitForTimeout(500);
    for (const frame of page.frames()) {
      if (frame !== page.mainFrame()) {
        const framed = await frame.locator("header.site").count().catch(() => 0);
        check(framed === 0, `the console was shown in another origin's frame (${frame.url()})`);
      }
    }
    const [answer] = await Promise.all([
      page.waitForResponse((response) => response.url() === consoleUrl() + "/checkouts"),
      page.getByRole("button", { name: "Win a prize" }).click(),
    ]);
    check(answer.status() === 403, `a cross-origin POST: ${answer.status()}`);
  } finally {
    evil.server.close();
  }
  await page.goto(consoleUrl() + "/");
  check((await listed(page)).length === before, "the cross-origin POST placed nothing");

  // Signing out ends the session.
  await Promise.all([
    page.waitForURL(/\/sign-in\?notice=signed-out$/),
    page.getByRole("button", { name: "Sign out" }).click(),
  ]);
  check(
    !(await context.cookies()).some((cookie) => cookie.name === "console_session"),
    "signing out clears the session cookie",
  );
  await page.goto(consoleUrl() + "/");
  check(page.url() === consoleUrl() + "/sign-in", "after signing out, / goes to sign-in");

  // The operator: every customer's checkouts.
  await signIn(page, operatorToken);
  check((await page.locator("#signed-in-role").textContent()).includes("operator"), "as an operator");
  ids = await listed(page);
  check(
    ids.includes(aliceCheckout) && ids.includes(bobCheckout),
    `the operator sees alice's and bob's checkouts: ${ids}`,
  );
  await context.close();
});
