// The client app at /: a person's whole account, an access token expiring under the
// app, and the phone layout. Users are made through the API where the sign-up form is
// not what is under test.
import { readFile } from "node:fs/promises";
import {
  apiLogIn,
  assertUsable,
  callApi,
  DESKTOP,
  env,
  field,
  linkFromMail,
  logInWithForm as logIn,
  newPage,
  PHONE,
  saveScreenshot,
  sleep,
  stepper,
  unique,
} from "./harness.mjs";

const PASSWORD = "maple river cobalt 73";
const NEW_PASSWORD = "harbour violet quartz 58";

async function register(name, email, password = PASSWORD) {
  const answer = await callApi("POST", "/api/v1/auth/register", { body: { name, email, password } });
  if (answer.status !== 202) throw new Error(`register ${email}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** A signed-in page is up: the header's "Log out" and the page's own heading. */
async function onPage(page, heading) {
  await page.getByRole("heading", { name: heading, level: 1 }).waitFor();
  await page.getByRole("button", { name: "Log out", exact: true }).waitFor();
}

/** The tabs of the several-tabs scenario, each showing its signed-in screen. */
async function settled([profile, sessions, data, admin]) {
  await onPage(profile, "Your profile");
  await onPage(sessions, "Sessions");
  await sessions.getByText("This device").waitFor();
  await onPage(data, "Your data");
  await admin.getByText("This account cannot use the admin portal").waitFor();
}

async function nav(page, label) {
  await page.getByRole("navigation").getByRole("link", { name: label, exact: true }).click();
}

export const scenarios = [
  {
    name: "client: a new user's whole journey",
    async run(browser) {
      const page = await newPage(browser, DESKTOP);
      const step = stepper(this.name);
      const email = `${unique("jane")}@example.com`;

      await step(page, "sign up and land logged in", async () => {
        await page.goto("/signup");
        await page.getByRole("heading", { name: "Create your account" }).waitFor();
        await assertUsable(page);
        await field(page, "Name").fill("Jane Doe");
        await field(page, "Email").fill(email);
        await field(page, "Password").fill(PASSWORD);
        await field(page, "Confirm password").fill(PASSWORD);
        await page.getByRole("button", { name: "Create account" }).click();
        await onPage(page, "Your profile");
        await page.getByText(email).first().waitFor();
        if (new URL(page.url()).pathname !== "/") throw new Error(`landed on ${page.url()}`);
        await assertUsable(page);
      });

      await step(page, "edit the name; it stays after a reload", async () => {
        await field(page, "Name").fill("Jane Ashworth");
        await page.getByRole("button", { name: "Save changes" }).click();
        await page.getByText("Profile saved").waitFor();
        await assertUsable(page);
        await page.reload();
        await onPage(page, "Your profile");
        await page.getByRole("heading", { name: "Jane Ashworth" }).waitFor();
        const value = await field(page, "Name").inputValue();
        if (value !== "Jane Ashworth") throw new Error(`name after reload: ${value}`);
        await assertUsable(page);
        await saveScreenshot(page, "client");
      });

      await step(page, "a new email asks for the current password", async () => {
        await field(page, "Email").fill(`other-${email}`);
        await field(page, "Current password").waitFor();
        await assertUsable(page);
        await page.getByRole("button", { name: "Undo changes" }).click();
        await field(page, "Current password").waitFor({ state: "detached" });
      });

      await step(page, "change the password", async () => {
        await nav(page, "Password");
        await onPage(page, "Change your password");
        await assertUsable(page);
        await field(page, "Current password").fill(PASSWORD);
        await field(page, "New password").fill(NEW_PASSWORD);
        await field(page, "Confirm new password").fill(NEW_PASSWORD);
        await page.getByRole("button", { name: "Change password" }).click();
        await page.getByText("Your password has been changed").waitFor();
      });

      await step(page, "log out, log in with the new password", async () => {
        await page.getByRole("button", { name: "Log out", exact: true }).click();
        await page.getByRole("heading", { name: "Log in" }).waitFor();
        await assertUsable(page);
        await logIn(page, email, NEW_PASSWORD);
        await onPage(page, "Your profile");
      });

      await step(page, "end the other sessions", async () => {
        await apiLogIn(email, NEW_PASSWORD); // a second device
        await nav(page, "Sessions");
        await onPage(page, "Sessions");
        await page.getByText("This device").waitFor();
        await page.getByText("2 active sessions").waitFor();
        await assertUsable(page);
        await page.getByRole("button", { name: "End all other sessions" }).click();
        const dialog = page.getByRole("dialog", { name: "End all other sessions?" });
        await assertUsable(page);
        await dialog.getByRole("button", { name: "End other sessions" }).click();
        await page.getByText("1 active session", { exact: true }).waitFor();
      });

      await step(page, "download my data", async () => {
        await nav(page, "Your data");
        await onPage(page, "Your data");
        await assertUsable(page);
        const [download] = await Promise.all([
          page.waitForEvent("download"),
          page.getByRole("button", { name: "Download my data" }).click(),
        ]);
        if (!/^gatehouse-data-\d{4}-\d{2}-\d{2}\.json$/.test(download.suggestedFilename())) {
          throw new Error(`file name ${download.suggestedFilename()}`);
        }
        const data = JSON.parse(await readFile(await download.path(), "utf8"));
        if (data.user?.email !== email) throw new Error(`export is about ${data.user?.email}`);
      });

      await step(page, "delete the account after typing the email", async () => {
        await page.getByRole("button", { name: "Delete my account" }).click();
        const dialog = page.getByRole("dialog", { name: "Delete your account?" });
        await dialog.waitFor();
        await assertUsable(page);
        const confirm = dialog.getByRole("button", { name: "Delete my account" });
        if (await confirm.isEnabled()) throw new Error("deletion possible before the email was typed");
        await field(dialog, "Type your email address to confirm").fill(email);
        await confirm.click();
        await page.getByRole("heading", { name: "Your account has been deleted" }).waitFor();
        await assertUsable(page);
      });

      await step(page, "the deleted account cannot log in", async () => {
        await page.getByRole("link", { name: "Back to the login" }).click();
        await logIn(page, email, NEW_PASSWORD);
        await page.getByRole("alert").filter({ hasText: "do not match" }).waitFor();
      });
      await page.context().close();
    },
  },
  {
    name: "client: an expired access token is refreshed silently",
    background: true,
    async run(browser) {
      const page = await newPage(browser, DESKTOP);
      const step = stepper(this.name);
      const email = `${unique("tom")}@example.com`;
      await register("Tom Fielding", email);

      await step(page, "log in and open the sessions", async () => {
        await page.goto("/sessions");
        await page.getByRole("heading", { name: "Log in" }).waitFor();
        await logIn(page, email, PASSWORD);
        // Back where the visitor was going.
        await onPage(page, "Sessions");
        await page.getByText("This device").waitFor();
      });

      await step(page, "no token anywhere a script can read", async () => {
        const found = await page.evaluate(() => {
          const stored = [localStorage, sessionStorage].flatMap((store) =>
            Object.keys(store).map((key) => `${key}=${store.getItem(key)}`),
          );
          return { cookie: document.cookie, stored };
        });
        if (found.cookie.includes("gatehouse_refresh")) throw new Error(`refresh cookie readable: ${found.cookie}`);
        const leaked = found.stored.filter((entry) => /token|eyJ/i.test(entry));
        if (leaked.length) throw new Error(`tokens in storage: ${leaked.join(", ")}`);
      });

      await sleep((env.accessTtl + 2) * 1000);

      await step(page, "moving around after expiry needs no login", async () => {
        await nav(page, "Profile");
        await onPage(page, "Your profile");
        await page.getByRole("heading", { name: "Tom Fielding" }).waitFor();
        await nav(page, "Sessions");
        await onPage(page, "Sessions");
        await page.getByText("This device").waitFor();
        if (await page.getByRole("heading", { name: "Log in" }).count()) throw new Error("sent to the login");
        if (page.problems.length) throw new Error(page.problems.join("\n"));
      });
      await page.context().close();
    },
  },
  {
    // Refresh tokens rotate and a spent one ends the session: tabs that wake up together
    // must take turns (Web Locks), or the second tab's refresh would log everyone out.
    name: "client: tabs refreshing at the same moment keep the session",
    async run(browser) {
      const page = await newPage(browser, DESKTOP);
      const step = stepper(this.name);
      const email = `${unique("rui")}@example.com`;
      await register("Rui Costa", email);

      const tabs = [page];
      await step(page, "log in, then open three more tabs of both apps", async () => {
        await page.goto("/login");
        await logIn(page, email, PASSWORD);
        await onPage(page, "Your profile");
        for (const path of ["/sessions", "/data", "/admin"]) {
          const tab = await page.context().newPage();
          await tab.goto(path);
          tabs.push(tab);
        }
        // Each tab settled (its own refresh done) before they all wake together.
        await settled(tabs);
      });

      await step(page, "reload every tab at once, twice: all still logged in", async () => {
        for (let round = 0; round < 2; round++) {
          await Promise.all(tabs.map((tab) => tab.reload()));
          await settled(tabs);
        }
        // Still one session, rotated in turn rather than ended by a reused token.
        await tabs[1].reload();
        await tabs[1].getByText("1 active session").waitFor();
      });
      await page.context().close();
    },
  },
  {
    // The links of real emails (Gatehouse → SMTP → this test) lead to working pages.
    name: "client: email links: confirm the address, reset a forgotten password",
    async run(browser) {
      const page = await newPage(browser, DESKTOP);
      const step = stepper(this.name);
      const email = `${unique("lee")}@example.com`;
      await register("Lee Okafor", email);

      await step(page, "the verification mail's link confirms the address on a button", async () => {
        const link = await linkFromMail(email, /Confirm your email/);
        await page.goto(link.pathname + link.search);
        const confirm = page.getByRole("button", { name: "Confirm my email" });
        await assertUsable(page);
        await confirm.click();
        await page.getByText(`${email} is confirmed`).waitFor();
      });

      await step(page, "forgot password: ask for a link", async () => {
        await page.goto("/forgot-password");
        await field(page, "Email").fill(email);
        await assertUsable(page);
        await page.getByRole("button", { name: "Send the link" }).click();
        await page.getByText(/If an account exists for that email, we sent a link/).waitFor();
      });

      await step(page, "the reset mail's link sets a new password that logs in", async () => {
        const link = await linkFromMail(email, /Reset your/);
        await page.goto(link.pathname + link.search);
        await field(page, "New password").fill(NEW_PASSWORD);
        await field(page, "Confirm new password").fill(NEW_PASSWORD);
        await assertUsable(page);
        await page.getByRole("button", { name: "Set the new password" }).click();
        await page.getByText("Your new password is set.").waitFor();
        await page.getByRole("link", { name: "Log in", exact: true }).click();
        await logIn(page, email, NEW_PASSWORD);
        await onPage(page, "Your profile");
      });
      await page.context().close();
    },
  },
  {
    name: "client: phone width",
    async run(browser) {
      const page = await newPage(browser, PHONE);
      const step = stepper(this.name);
      const email = `${unique("ana")}@example.com`;
      await register("Ana Lindqvist", email);

      await step(page, "sign-up page", async () => {
        await page.goto("/signup");
        await page.getByRole("heading", { name: "Create your account" }).waitFor();
        await assertUsable(page);
      });

      await step(page, "login page", async () => {
        await page.getByRole("link", { name: "Log in" }).click();
        await page.getByRole("heading", { name: "Log in" }).waitFor();
        await assertUsable(page);
      });

      await step(page, "log in with the keyboard alone; profile", async () => {
        // Tab from the page's start to the email field, then type, Tab, type, Enter.
        const emailField = field(page, "Email");
        for (
          let presses = 0;
          presses < 10 && !(await emailField.evaluate((el) => el === document.activeElement));
          presses++
        ) {
          await page.keyboard.press("Tab");
        }
        await page.keyboard.type(email);
        await page.keyboard.press("Tab");
        if (!(await field(page, "Password").evaluate((el) => el === document.activeElement))) {
          throw new Error("Tab from the email does not reach the password");
        }
        await page.keyboard.type(PASSWORD);
        await page.keyboard.press("Enter");
        await onPage(page, "Your profile");
        await assertUsable(page);
      });

      await step(page, "the burger opens the menu; sessions", async () => {
        const menu = page.getByRole("navigation", { name: "Your account", includeHidden: true });
        const closed = await menu.boundingBox();
        if (closed && closed.x + closed.width > 1) throw new Error("the menu shows before the burger is pressed");
        await page.getByRole("button", { name: "Open the menu" }).click();
        await menu.getByRole("link", { name: "Sessions", exact: true }).click();
        await onPage(page, "Sessions");
        await page.getByText("This device").waitFor();
        // The menu slides away again once a page is chosen.
        await page.getByRole("button", { name: "Open the menu" }).waitFor();
        await page.waitForFunction(
          () => document.querySelector('nav[aria-label="Your account"]')?.getBoundingClientRect().right <= 0,
        );
        await assertUsable(page);
        await saveScreenshot(page, "client-phone");
      });
      await page.context().close();
    },
  },
];
