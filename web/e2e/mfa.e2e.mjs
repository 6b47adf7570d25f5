// Second factors in both apps: an authenticator app (codes computed here from the key
// the page shows, as a phone would), recovery codes, and passkeys through Chromium's
// virtual authenticator (DevTools' WebAuthn domain). The admin portal's scenario runs
// against a second server whose policy requires MFA of admins (E2E_MFA_BASE_URL); a
// second admin enrols there with a passkey.
import {
  addVirtualAuthenticator,
  assertUsable,
  callApi,
  DESKTOP,
  env,
  eventually,
  field,
  logInWithForm as logIn,
  newPage,
  saveScreenshot,
  stepper,
  totp,
  unique,
} from "./harness.mjs";

const PASSWORD = "copper meadow signal 19";

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

/** A fresh account through the API (its sign-up is tested elsewhere). */
async function newAccount(name) {
  const email = `${unique(name.split(" ")[0].toLowerCase())}@example.com`;
  const answer = await callApi("POST", "/api/v1/auth/register", { body: { name, email, password: PASSWORD } });
  expect(answer.status === 202, `register ${email}: ${answer.status}`);
  return { name, email };
}

async function signedIn(page) {
  await page.getByRole("button", { name: "Log out", exact: true }).waitFor();
}

async function logOut(page) {
  await page.getByRole("button", { name: "Log out", exact: true }).click();
  await page.getByRole("button", { name: "Log in", exact: true }).waitFor();
}

/** The recovery codes panel: its ten codes, then "I saved them" and Done. */
async function keepRecoveryCodes(page, screenshot) {
  const panel = page.getByRole("region", { name: "Your recovery codes" });
  await panel.waitFor();
  const text = await panel.getByRole("list", { name: "Recovery codes" }).textContent();
  const codes = text.match(/[a-z0-9]{5}-[a-z0-9]{5}/g) ?? [];
  expect(codes.length === 10, `ten recovery codes shown, got ${codes.length}`);
  await assertUsable(page);
  if (screenshot) await saveScreenshot(page, screenshot);
  await page.getByLabel("I saved them").check();
  await page.getByRole("button", { name: "Done", exact: true }).click();
  await panel.waitFor({ state: "detached" });
  return codes;
}

/** Turn on an authenticator app from the security settings; its key and codes. */
async function setUpAuthenticatorApp(page, screenshots = {}, password = PASSWORD) {
  await page.getByRole("button", { name: "Set up authenticator app" }).first().click();
  await field(page, "Current password").fill(password);
  await page.getByRole("button", { name: "Continue", exact: true }).click();
  const qr = page.getByRole("img", { name: "QR code for your authenticator app" });
  await qr.waitFor();
  const drawn = await eventually(
    () => qr.evaluate((image) => image.complete && image.naturalWidth),
    (width) => width > 0,
    "the QR code is drawn",
  );
  expect(drawn > 0, "the QR code is drawn");
  await page.getByRole("button", { name: "Can't scan? Enter this key" }).click();
  const shown = await page.locator("form[aria-label='Confirm your authenticator app'] code").textContent();
  const secret = shown.replace(/\s+/g, "");
  expect(/^[A-Z2-7]{16,}$/.test(secret), `a base32 key is shown: ${shown}`);
  await assertUsable(page);
  if (screenshots.scan) await saveScreenshot(page, screenshots.scan);
  await field(page, "Authentication code").fill(totp(secret));
  await page.getByRole("button", { name: "Turn on", exact: true }).click();
  const codes = await keepRecoveryCodes(page, screenshots.codes);
  return { secret, codes };
}

export const scenarios = [
  {
    name: "mfa: an authenticator app, the login's second step and a recovery code",
    async run(browser) {
      const page = await newPage(browser, DESKTOP);
      const step = stepper(this.name);
      const person = await newAccount("Grace Hopper");
      let secret;
      let codes;

      await step(page, "log in and open Security", async () => {
        await page.goto("/login");
        await logIn(page, person.email, PASSWORD);
        await signedIn(page);
        await page.goto("/security");
        await page.getByRole("heading", { name: "Security", level: 1 }).waitFor();
        await page.getByText("Off", { exact: true }).first().waitFor();
        await assertUsable(page);
      });

      await step(page, "set up an authenticator app; recovery codes shown once", async () => {
        ({ secret, codes } = await setUpAuthenticatorApp(page, { scan: "mfa-enrol", codes: "mfa-recovery-codes" }));
        await page.getByRole("button", { name: "Remove authenticator app" }).waitFor();
        await page.getByText("10 recovery codes left.").waitFor();
      });

      await step(page, "the password alone no longer logs in: the second step asks for a code", async () => {
        await logOut(page);
        await logIn(page, person.email, PASSWORD);
        await field(page, "Authentication code").waitFor();
        await assertUsable(page);
        await saveScreenshot(page, "mfa-login-step");
        await field(page, "Authentication code").fill("000000");
        await page.getByRole("button", { name: "Log in", exact: true }).click();
        await page.getByText(/attempts? left/i).waitFor();
        // The next time step's code: the one that turned the app on was spent.
        await field(page, "Authentication code").fill(totp(secret, { offset: 1 }));
        await page.getByRole("button", { name: "Log in", exact: true }).click();
        await signedIn(page);
      });

      await step(page, "a recovery code logs in once", async () => {
        await logOut(page);
        await logIn(page, person.email, PASSWORD);
        await page.getByLabel("Use a recovery code").check();
        await field(page, "Recovery code").fill(codes[0]);
        await page.getByRole("button", { name: "Log in", exact: true }).click();
        await signedIn(page);
        await page.goto("/security");
        await page.getByText("9 recovery codes left.").waitFor();
      });
    },
  },
  {
    name: "mfa: a passkey in the client app, as a second factor and alone",
    async run(browser) {
      const page = await newPage(browser, DESKTOP);
      const step = stepper(this.name);
      const person = await newAccount("Katherine Johnson");
      const authenticator = await addVirtualAuthenticator(page);

      await step(page, "add a passkey from Security", async () => {
        await page.goto("/login");
        await logIn(page, person.email, PASSWORD);
        await signedIn(page);
        await page.goto("/security");
        await page.getByRole("button", { name: "Add a passkey" }).first().click();
        await field(page, "Passkey name").fill("This laptop");
        await field(page, "Current password").fill(PASSWORD);
        await page.getByRole("button", { name: "Create the passkey" }).click();
        await keepRecoveryCodes(page);
        await page.getByRole("list", { name: "Your passkeys" }).getByText("This laptop").waitFor();
        await assertUsable(page);
        await saveScreenshot(page, "mfa-security");
        const stored = await authenticator.credentials();
        expect(stored.length === 1 && stored[0].isResidentCredential, "one discoverable credential");
      });

      await step(page, "the password's second step takes the passkey", async () => {
        await logOut(page);
        await logIn(page, person.email, PASSWORD);
        await page.getByRole("button", { name: "Use a passkey" }).click();
        await signedIn(page);
      });

      await step(page, "sign in with the passkey alone", async () => {
        await logOut(page);
        await page.getByRole("button", { name: "Sign in with a passkey" }).click();
        await signedIn(page);
        const me = await page.evaluate(async () => (await fetch("/api/v1/users/me")).status);
        expect(me === 401, "the access token is not a cookie: a bare fetch is not signed in");
      });

      await step(page, "remove the passkey: two-factor authentication goes off", async () => {
        await page.goto("/security");
        await page.getByRole("button", { name: "Remove This laptop" }).click();
        const dialog = page.getByRole("dialog", { name: "Remove this passkey?" });
        await dialog.getByRole("button", { name: "Remove passkey" }).click();
        // The passkey login was a step-up moments ago: no second-factor question, it goes.
        await dialog.waitFor({ state: "detached" });
        await page.getByText("No passkeys yet.").waitFor();
        await eventually(
          async () => page.getByText("This laptop").count(),
          (count) => count === 0,
          "the passkey is gone from the list",
        );
      });
    },
  },
  {
    name: "mfa: the admin portal requires a second factor of admins",
    async run(browser) {
      const base = process.env.E2E_MFA_BASE_URL;
      const adminEmail = process.env.E2E_MFA_ADMIN_EMAIL;
      expect(base && adminEmail, "E2E_MFA_BASE_URL and E2E_MFA_ADMIN_EMAIL are set");
      const context = await browser.newContext({ viewport: DESKTOP, baseURL: base, locale: "en-GB" });
      context.setDefaultTimeout(10_000);
      const page = await context.newPage();
      const step = stepper(this.name);
      let secret;
      let codes;
      let adminToken;

      await step(page, "an admin without MFA gets the enrolment screen, then the portal", async () => {
        await page.goto("/admin/");
        await logIn(page, adminEmail, env.adminPassword);
        await page.getByRole("heading", { name: "Set up two-factor authentication" }).waitFor();
        await assertUsable(page);
        await saveScreenshot(page, "mfa-admin-enrolment");
        ({ secret, codes } = await setUpAuthenticatorApp(page, {}, env.adminPassword));
        await page.getByRole("heading", { name: "Set up two-factor authentication" }).waitFor({ state: "detached" });
        await page.getByRole("button", { name: "Log out", exact: true }).waitFor();
      });

      await step(page, "the portal's login asks for the code", async () => {
        await page.getByRole("button", { name: "Log out", exact: true }).click();
        await logIn(page, adminEmail, env.adminPassword);
        await field(page, "Authentication code").fill(totp(secret, { offset: 1 }));
        await page.getByRole("button", { name: "Log in", exact: true }).click();
        await page.getByRole("button", { name: "Log out", exact: true }).waitFor();
      });

      await step(page, "a user's factors on their page, and Reset MFA", async () => {
        const admin = await fetch(new URL("/api/v1/auth/token", base), {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ username: adminEmail, password: env.adminPassword }),
        });
        const mfaStep = await admin.json();
        const token = await fetch(new URL("/api/v1/auth/mfa/verify", base), {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({
            mfa_token: mfaStep.error.details.mfa_token,
            // The app's codes up to the next step are spent: a recovery code instead.
            method: "recovery_code",
            code: codes[0],
          }),
        });
        const pair = await token.json();
        expect(token.status === 200, `the admin's API login: ${JSON.stringify(pair)}`);
        const created = await fetch(new URL("/api/v1/users", base), {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: `Bearer ${pair.access_token}` },
          body: JSON.stringify({
            name: "Dorothy Vaughan",
            email: `${unique("dorothy")}@example.com`,
            password: PASSWORD,
            role: "user",
          }),
        });
        const user = await created.json();
        expect(created.status === 201, `create a user: ${JSON.stringify(user)}`);
        // The user turns on an app of their own, through the API.
        const login = await (
          await fetch(new URL("/api/v1/auth/token", base), {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ username: user.email, password: PASSWORD }),
          })
        ).json();
        const auth = { "Content-Type": "application/json", Authorization: `Bearer ${login.access_token}` };
        const enrolment = await (
          await fetch(new URL("/api/v1/users/me/mfa/totp", base), {
            method: "POST",
            headers: auth,
            body: JSON.stringify({ current_password: PASSWORD }),
          })
        ).json();
        const confirmed = await fetch(new URL("/api/v1/users/me/mfa/totp/confirm", base), {
          method: "POST",
          headers: auth,
          body: JSON.stringify({ code: totp(enrolment.secret) }),
        });
        expect(confirmed.status === 200, `the user's app is on: ${confirmed.status}`);

        await page.goto(`/admin/users/${user.id}`);
        const card = page.getByRole("region", { name: "Two-factor authentication" });
        await card.getByText("Recovery codes left").waitFor();
        await assertUsable(page);
        await saveScreenshot(page, "mfa-admin-user");
        await card.getByRole("button", { name: "Reset MFA" }).click();
        await page.getByRole("dialog").getByRole("button", { name: "Reset MFA" }).click();
        await card.getByRole("button", { name: "Reset MFA" }).waitFor({ state: "detached" });
        const after = await fetch(new URL(`/api/v1/users/${user.id}/mfa`, base), {
          headers: { Authorization: `Bearer ${pair.access_token}` },
        });
        const state = await after.json();
        expect(after.status === 200 && state.enabled === false, `MFA is off: ${JSON.stringify(state)}`);
        adminToken = pair.access_token;
      });

      await step(page, "a second admin enrols with a passkey, then logs in with it twice", async () => {
        const email = `${unique("mary")}@example.com`;
        const created = await fetch(new URL("/api/v1/users", base), {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: `Bearer ${adminToken}` },
          body: JSON.stringify({ name: "Mary Jackson", email, password: PASSWORD, role: "admin" }),
        });
        expect(created.status === 201, `create an admin: ${created.status}`);
        // A browser of her own: the virtual authenticator belongs to this page.
        const own = await browser.newContext({ viewport: DESKTOP, baseURL: base, locale: "en-GB" });
        own.setDefaultTimeout(10_000);
        const portal = await own.newPage();
        const authenticator = await addVirtualAuthenticator(portal);
        await portal.goto("/admin/");
        await logIn(portal, email, PASSWORD);
        await portal.getByRole("heading", { name: "Set up two-factor authentication" }).waitFor();
        await portal.getByRole("button", { name: "Add a passkey" }).click();
        await field(portal, "Passkey name").fill("Office key");
        await field(portal, "Current password").fill(PASSWORD);
        await portal.getByRole("button", { name: "Create the passkey" }).click();
        await keepRecoveryCodes(portal);
        await portal.getByRole("button", { name: "Log out", exact: true }).waitFor();
        const stored = await authenticator.credentials();
        expect(stored.length === 1 && stored[0].isResidentCredential, "one discoverable credential");

        // The password, then the passkey as the second step.
        await portal.getByRole("button", { name: "Log out", exact: true }).click();
        await logIn(portal, email, PASSWORD);
        await portal.getByRole("button", { name: "Use a passkey" }).click();
        await portal.getByRole("button", { name: "Log out", exact: true }).waitFor();
        await portal.getByRole("heading", { name: "Set up two-factor authentication" }).waitFor({ state: "detached" });

        // The passkey alone.
        await portal.getByRole("button", { name: "Log out", exact: true }).click();
        await portal.getByRole("button", { name: "Sign in with a passkey" }).click();
        await portal.getByRole("button", { name: "Log out", exact: true }).waitFor();
        await assertUsable(portal);
        await own.close();
      });
      await context.close();
    },
  },
];
