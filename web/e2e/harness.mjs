// What every end-to-end scenario uses: a real Chromium (Debian's, driven by
// playwright-core), a screenshot of the page when a step fails, and the checks every
// screen must pass (each form control labelled; nothing wider than the window).
import { createHmac } from "node:crypto";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));

export const env = {
  baseUrl: process.env.E2E_BASE_URL ?? "http://127.0.0.1:8000",
  adminEmail: process.env.E2E_ADMIN_EMAIL ?? "admin@example.com",
  adminPassword: process.env.E2E_ADMIN_PASSWORD ?? "",
  /** Seconds an access token lives on the server under test. */
  accessTtl: Number(process.env.E2E_ACCESS_TTL ?? "30"),
  failures: process.env.E2E_FAILURE_DIR ?? join(HERE, "artifacts", "failures"),
  /** README screenshots are written here when set (`make screenshots`). */
  screenshots: process.env.E2E_SCREENSHOT_DIR ?? join(HERE, "artifacts", "screenshots"),
  chromium: process.env.CHROMIUM ?? "/usr/bin/chromium",
  /** Where the test's SMTP server drops each mail as JSON ({to, subject, text}). */
  mailDir: process.env.E2E_MAIL_DIR ?? null,
};

export const PHONE = { width: 375, height: 740 };
export const DESKTOP = { width: 1280, height: 860 };

export async function launch() {
  return chromium.launch({
    executablePath: env.chromium,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
}

/** A fresh browser profile (no cookies) at a given viewport. */
export async function newPage(browser, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport, baseURL: env.baseUrl, locale: "en-GB" });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  page.problems = problems;
  return page;
}

function slug(text) {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");
}

/**
 * One named step of a scenario. A failure saves a screenshot of the page and the
 * failing step's name, then fails the scenario.
 */
export function stepper(scenario, log = console.log) {
  let count = 0;
  return async function step(page, name, action) {
    count += 1;
    const started = Date.now();
    try {
      const result = await action();
      log(`  ok   ${scenario} › ${name} (${Date.now() - started} ms)`);
      return result;
    } catch (error) {
      await mkdir(env.failures, { recursive: true });
      const file = join(env.failures, `${slug(scenario)}-${String(count).padStart(2, "0")}-${slug(name)}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      log(`  FAIL ${scenario} › ${name}: screenshot ${file}`);
      if (page.problems?.length) log(`       ${page.problems.join("\n       ")}`);
      error.message = `${scenario} › ${name}: ${error.message}`;
      throw error;
    }
  };
}

/** Every visible form control has an accessible name (a label a screen reader reads). */
export async function assertLabelled(page) {
  const unlabelled = await page.evaluate(() => {
    const controls = document.querySelectorAll("input, select, textarea, button, [role=switch], [role=checkbox]");
    const out = [];
    for (const element of controls) {
      if (element.type === "hidden") continue;
      const box = element.getBoundingClientRect();
      const style = getComputedStyle(element);
      if (box.width === 0 && box.height === 0) continue;
      if (style.visibility === "hidden" || style.display === "none") continue;
      const labelled =
        (element.labels?.length > 0 && [...element.labels].some((l) => l.textContent.trim())) ||
        element.getAttribute("aria-label")?.trim() ||
        element
          .getAttribute("aria-labelledby")
          ?.split(/\s+/)
          .some((id) => document.getElementById(id)?.textContent.trim()) ||
        (element.tagName === "BUTTON" && element.textContent.trim()) ||
        element.getAttribute("title")?.trim();
      if (!labelled) out.push(element.outerHTML.slice(0, 160));
    }
    return out;
  });
  if (unlabelled.length) throw new Error(`form controls without a label:\n${unlabelled.join("\n")}`);
}

/** Nothing sticks out sideways: the page fits the window's width (phone included). */
export async function assertFits(page) {
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    width: window.innerWidth,
  }));
  if (scroll > width + 1) throw new Error(`page is ${scroll}px wide in a ${width}px window`);
}

/** Both checks at once, for every screen a scenario visits. */
export async function assertUsable(page) {
  await assertLabelled(page);
  await assertFits(page);
}

/** A README screenshot (docs/screenshots when run by `make screenshots`). */
export async function saveScreenshot(page, name) {
  await mkdir(env.screenshots, { recursive: true });
  await page.screenshot({ path: join(env.screenshots, `${name}.png`) });
}

export function unique(prefix) {
  return `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Read the screen until `ok(value)` holds (it may still be loading or re-rendering),
 * then return the value; after `timeout`, fail with what was last seen.
 */
export async function eventually(read, ok, what, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not as expected: ${JSON.stringify(value).slice(0, 400)}`);
    await sleep(100);
  }
}

/** The link of the newest mail to `to` whose subject matches, once it has arrived. */
export async function linkFromMail(to, subject, timeout = 15_000) {
  if (!env.mailDir) throw new Error("no mailbox: E2E_MAIL_DIR is not set");
  const read = async () => {
    const names = (await readdir(env.mailDir)).filter((name) => name.endsWith(".json")).sort();
    const mails = await Promise.all(
      names.map(async (name) => JSON.parse(await readFile(join(env.mailDir, name), "utf-8"))),
    );
    return mails.filter((mail) => mail.to.includes(to) && subject.test(mail.subject)).at(-1) ?? null;
  };
  const mail = await eventually(read, (found) => found !== null, `a mail to ${to} about ${subject}`, timeout);
  const link = mail.text.match(/https?:\/\/\S+/);
  if (!link) throw new Error(`no link in the mail "${mail.subject}"`);
  return new URL(link[0]);
}

// ---- the API, for fixtures and for checks behind the browser's back ----

/** One JSON call to the server under test: {status, body}. */
export async function callApi(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(new URL(path, env.baseUrl), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** Log in through the API (JSON mode): the token pair, or a failure naming the account. */
export async function apiLogIn(email, password) {
  const answer = await callApi("POST", "/api/v1/auth/token", { body: { username: email, password } });
  if (answer.status !== 200) throw new Error(`log in as ${email}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

// ---- the browser ----

/** A form control by its label, exactly (a required one's label ends in an asterisk). */
export function field(scope, label) {
  return scope.getByLabel(new RegExp(`^${label}\\s*\\*?$`));
}

/** Fill and send the login form both apps share. */
export async function logInWithForm(page, email, password) {
  await field(page, "Email").fill(email);
  await field(page, "Password").fill(password);
  await page.getByRole("button", { name: "Log in", exact: true }).click();
}

// ---- second factors ----

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32Bytes(secret) {
  let bits = "";
  for (const char of secret.replace(/=+$/, "").toUpperCase()) {
    const value = BASE32.indexOf(char);
    if (value < 0) throw new Error(`not base32: ${char}`);
    bits += value.toString(2).padStart(5, "0");
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(Number.parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/**
 * The 6-digit code an authenticator app shows for `secret` (RFC 6238: SHA-1, 30 s) at
 * `at` (ms), as a person's phone would compute it; `offset` moves it by time steps.
 */
export function totp(secret, { at = Date.now(), offset = 0 } = {}) {
  const step = Math.floor(at / 1000 / 30) + offset;
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const digest = createHmac("sha1", base32Bytes(secret)).update(counter).digest();
  const start = digest[digest.length - 1] & 0x0f;
  const value = digest.readUInt32BE(start) & 0x7fffffff;
  return String(value % 1_000_000).padStart(6, "0");
}

/**
 * A platform authenticator in this page's browser (Chrome DevTools' virtual one): it
 * keeps discoverable credentials and verifies the user at once, as Touch ID would.
 */
export async function addVirtualAuthenticator(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable", { enableUI: false });
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return {
    async credentials() {
      const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
      return credentials;
    },
  };
}
