// The relying parties that live in a browser, or that a browser visits, driven in a real
// Chromium (playwright-core and the launch settings of the web apps' e2e suite):
//   spa     — oidc-client-ts in a static page (a public client): sign in through
//             Gatehouse's login page (and its consent page), the profile shown, sign out.
//   apache  — a page of Apache's protected by mod_auth_openidc: sign in through
//             Gatehouse's login page, the page shows the person's claims, log out.
//
// Usage: node browser.mjs <spa|apache> '<json>'; the JSON gives the addresses and the
// person (see each scenario). Prints one JSON object: {ok: true, ...what each step saw}
// or {ok: false, step, error, url, screenshot}.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { field, launch, logInWithForm } from "../../../web/e2e/harness.mjs";

const [scenario, raw] = process.argv.slice(2);
const input = JSON.parse(raw);
const issuer = new URL(input.issuer);
const result = { ok: false, scenario, steps: [] };
let current = "start";

async function step(name, action) {
  current = name;
  const value = await action();
  result.steps.push(name);
  return value;
}

/** Where the page is once it has settled on a URL that `predicate` accepts. */
async function landOn(page, predicate) {
  await page.waitForURL((url) => predicate(new URL(url)), { timeout: 15_000 });
  await page.waitForLoadState("load");
  return new URL(page.url());
}

const atLogin = (url) => url.origin === issuer.origin && url.pathname === "/login";

/** Gatehouse's login page, the form showing; the `return_to` it was sent with. */
async function loginPage(page) {
  const url = await landOn(page, atLogin);
  await field(page, "Email").waitFor();
  return { path: url.pathname, return_to: url.searchParams.get("return_to") };
}

/** The SPA's status line once it says something other than "Loading…". */
async function spaStatus(page) {
  const status = page.locator("#status");
  await page.waitForFunction(() => document.getElementById("status")?.textContent !== "Loading…");
  return (await status.textContent()).trim();
}

async function spa(page) {
  const home = new URL(input.spa_url);
  const fromSpa = (url) => url.origin === home.origin;
  await step("the SPA, not signed in", async () => {
    await page.goto(home.href);
    result.initial_status = await spaStatus(page);
  });
  result.login_page = await step("Sign in: Gatehouse's login page", async () => {
    await page.getByRole("button", { name: "Sign in" }).click();
    return loginPage(page);
  });
  await step("log in", async () => {
    await logInWithForm(page, input.email, input.password);
    const next = await landOn(page, (url) => fromSpa(url) || url.pathname === "/consent");
    if (next.pathname === "/consent") {
      await page.getByRole("heading", { name: /^Allow / }).waitFor();
      result.consent_page = (await page.locator("body").innerText()).slice(0, 2000);
      await page.getByRole("button", { name: /^(Allow|Accept|Authori[sz]e|Continue)\b/ }).click();
      await landOn(page, fromSpa);
    }
  });
  await step("back in the SPA: the profile", async () => {
    result.signed_in_status = await spaStatus(page);
    const text = await page.locator("#profile").textContent();
    result.profile = text ? JSON.parse(text) : null;
    result.spa_url_after_callback = page.url();
  });
  result.renewal = await step("Renew: a silent sign-in in a hidden iframe (prompt=none)", async () => {
    await page.getByRole("button", { name: "Renew" }).click();
    await page.waitForFunction(() => {
      const text = document.getElementById("status")?.textContent ?? "";
      return text === "Renewed" || text.startsWith("Error");
    });
    const text = await page.locator("#profile").textContent();
    return { status: await page.locator("#status").textContent(), profile: text ? JSON.parse(text) : null };
  });
  await step("Sign out: Gatehouse's end_session, back to the SPA", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    const back = await landOn(page, (url) => fromSpa(url) && url.pathname === "/signed-out");
    result.after_signout_url = back.href;
    result.signed_out_status = await spaStatus(page);
  });
  result.login_after_signout = await step("Sign in again: the login form, no silent sign-in", async () => {
    await page.getByRole("button", { name: "Sign in" }).click();
    return loginPage(page);
  });
}

async function apache(page) {
  const site = new URL(input.protected_url);
  const protectedPage = (url) => url.origin === site.origin && url.pathname === site.pathname;
  result.login_page = await step("the protected page: Gatehouse's login page", async () => {
    await page.goto(site.href);
    return loginPage(page);
  });
  await step("log in: back on the protected page", async () => {
    await logInWithForm(page, input.email, input.password);
    await landOn(page, protectedPage);
    result.protected_text = await page.locator("body").innerText();
  });
  await step("the protected page again: no login asked", async () => {
    await page.goto(site.href);
    await landOn(page, protectedPage);
    result.protected_again = (await page.locator("body").innerText()).includes(input.email);
  });
  await step("log out: through Gatehouse's end_session", async () => {
    await page.goto(input.logout_url);
    const done = new URL(input.logged_out_url);
    await landOn(page, (url) => url.origin === done.origin && url.pathname === done.pathname);
    result.logged_out_text = await page.locator("body").innerText();
  });
  result.login_after_logout = await step("the protected page after logout: the login form", async () => {
    await page.goto(site.href);
    return loginPage(page);
  });
}

const scenarios = { spa, apache };
const browser = await launch();
const context = await browser.newContext({ locale: "en-GB" });
context.setDefaultTimeout(15_000);
const page = await context.newPage();
const problems = [];
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
page.on("console", (message) => {
  if (message.type() === "error") problems.push(`console error: ${message.text()}`);
});
// Which requests failed (the console names no address).
page.on("response", (response) => {
  if (response.status() >= 400) problems.push(`${response.status()} ${response.request().method()} ${response.url()}`);
});
try {
  await scenarios[scenario](page);
  result.ok = true;
} catch (error) {
  result.step = current;
  result.error = error?.message ?? String(error);
  result.url = page.url();
  result.page_text = (await page.locator("body").innerText().catch(() => "")).slice(0, 2000);
  if (input.artifacts) {
    await mkdir(input.artifacts, { recursive: true });
    result.screenshot = join(input.artifacts, `${scenario}-failure.png`);
    await page.screenshot({ path: result.screenshot, fullPage: true }).catch(() => {});
  }
} finally {
  result.console = problems;
  await browser.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(result.ok ? 0 : 1);
