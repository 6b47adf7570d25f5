// The admin portal at /admin, against a live Gatehouse (first admin: env.adminEmail).
// Fixtures are made through the API with fetch; the browser does the flows under test.
// Logins are few on purpose: the login endpoint allows 20 a minute per address, shared
// with the client app's scenarios, so later scenarios reuse the admin's browser session.
import {
  apiLogIn,
  assertUsable,
  callApi as call,
  DESKTOP,
  env,
  eventually,
  logInWithForm,
  newPage,
  PHONE,
  saveScreenshot,
  stepper,
  unique,
} from "./harness.mjs";

const PASSWORD = "quiet harbour lamp 7";
// biome-ignore format: five names a row keep the 25 fixtures readable at a glance
const PEOPLE = [
  "Ada Lovelace", "Alan Turing", "Barbara Liskov", "Charles Babbage", "Donald Knuth",
  "Edsger Dijkstra", "Frances Allen", "Grace Hopper", "Hedy Lamarr", "Ivan Sutherland",
  "John Backus", "Ken Thompson", "Leslie Lamport", "Margaret Hamilton", "Niklaus Wirth",
  "Ole-Johan Dahl", "Peter Naur", "Radia Perlman", "Shafi Goldwasser", "Tim Berners-Lee",
  "Unix Pioneer", "Vint Cerf", "Whitfield Diffie", "Xerox Parc", "Yukihiro Matsumoto",
];
/** Roles of the 25 fixture users: mostly `user`, a few readonly (never a second admin). */
const roleOf = (i) => (i === 4 || i === 11 ? "readonly" : "user");

// ---- the API, for fixtures and for checks behind the browser's back ----

// One admin API session for every scenario, refreshed (not logged in again) as it ages;
// single-flight, since a refresh token presented twice would end the session.
let admin = null;
let pending = null;
async function adminToken() {
  const fresh = admin && Date.now() - admin.at < (env.accessTtl - 10) * 1000;
  if (fresh) return admin.access_token;
  pending ??= (async () => {
    const tokens = admin
      ? (await call("POST", "/api/v1/auth/refresh", { body: { refresh_token: admin.refresh_token } })).body
      : await apiLogIn(env.adminEmail, env.adminPassword);
    if (!tokens?.access_token) throw new Error(`admin token: ${JSON.stringify(tokens)}`);
    admin = { ...tokens, at: Date.now() };
  })().finally(() => {
    pending = null;
  });
  await pending;
  return admin.access_token;
}

async function createUser(fields) {
  const answer = await call("POST", "/api/v1/users", {
    token: await adminToken(),
    body: { password: PASSWORD, ...fields },
  });
  if (answer.status !== 201) throw new Error(`create ${fields.email}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

// ---- the browser ----

// The admin's browser cookies after the first UI login, so later scenarios start logged in.
let adminCookies = null;

/** A page at `path`, logged in as the first admin (the saved session, else the form). */
async function adminPage(browser, path, viewport = DESKTOP) {
  const page = await newPage(browser, viewport);
  if (adminCookies) await page.context().addCookies(adminCookies);
  await page.goto(`/admin${path}`);
  const shell = page.getByRole("button", { name: "Log out" });
  const form = page.getByRole("button", { name: "Log in" });
  await shell.or(form).first().waitFor();
  if (await form.isVisible()) {
    await logInWithForm(page, env.adminEmail, env.adminPassword);
    await shell.waitFor();
  }
  return page;
}

/**
 * Rows of the users table as {name, email}, once they satisfy `ready` (the table keeps
 * the previous page on screen while the next one loads, so a check polls for the change).
 */
async function userRows(page, ready = (rows) => rows.length > 0, what = "the users table") {
  const table = page.getByRole("table", { name: "Users" });
  await table.waitFor();
  const read = async () => ({
    busy: (await table.getAttribute("aria-busy")) === "true",
    rows: await table.locator("tbody tr").evaluateAll((trs) =>
      trs.map((tr) => {
        const cells = [...tr.querySelectorAll("td")].map((cell) => cell.textContent.trim());
        return { name: (cells[0] ?? "").replace(/deleted$/, ""), email: cells[1] ?? "" };
      }),
    ),
  });
  const seen = await eventually(read, ({ busy, rows }) => !busy && ready(rows), what);
  return seen.rows;
}

const isSorted = (order) => (rows) =>
  rows.length > 1 &&
  rows.every(
    (row, i) => i === 0 || (order === "asc" ? rows[i - 1].email <= row.email : rows[i - 1].email >= row.email),
  );

/** Keep the admin's browser session for the next scenario: its cookies as they are now. */
async function closeAdmin(page) {
  adminCookies = await page.context().cookies();
  await page.context().close();
}

async function confirm(page, label) {
  const dialog = page.getByRole("dialog");
  await dialog.getByRole("button", { name: label }).click();
  await dialog.waitFor({ state: "hidden" });
}

async function chooseOption(page, label, option) {
  await page.getByRole("textbox", { name: label, exact: true }).click();
  await page.getByRole("option", { name: option, exact: true }).click();
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

/** A phone the size the overview is checked at (iPhone 12 to 15). */
const PHONE_390 = { width: 390, height: 844 };

async function overview() {
  const answer = await call("GET", "/api/v1/overview", { token: await adminToken() });
  if (answer.status !== 200) throw new Error(`overview: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** The number a card of the overview shows: its second line, under the label. */
async function cardNumber(page, label) {
  const number = await page.getByRole("group", { name: label, exact: true }).locator("p").nth(1).textContent();
  return Number.parseInt(number.replace(/,/g, ""), 10);
}

/** The bars each chart of the overview draws, by the chart's title. */
async function barsPerChart(page) {
  return page
    .getByRole("figure")
    .evaluateAll((figures) =>
      Object.fromEntries(
        figures.map((figure) => [
          figure.querySelector("p")?.textContent ?? "",
          figure.querySelectorAll(".recharts-bar-rectangle path").length,
        ]),
      ),
    );
}

async function signUpThroughTheApi(email) {
  const answer = await call("POST", "/api/v1/auth/register", {
    body: { email, name: "Otto Overview", password: PASSWORD },
  });
  if (answer.status !== 202) throw new Error(`sign up ${email}: ${answer.status} ${JSON.stringify(answer.body)}`);
}

export const scenarios = [
  {
    name: "admin: the overview",
    async run(browser) {
      const step = stepper(this.name);
      const page = await newPage(browser, DESKTOP);
      const made = { signups: 3, logins: 3, failed: 2 };

      const after = await step(page, "sign-ups, logins and failed logins through the API", async () => {
        const before = await overview();
        const emails = Array.from({ length: made.signups }, (_, i) => `${unique(`otto${i}`)}@example.com`);
        for (const email of emails) await signUpThroughTheApi(email);
        for (const email of emails) await apiLogIn(email, PASSWORD);
        for (const email of emails.slice(0, made.failed)) {
          const refused = await call("POST", "/api/v1/auth/token", {
            body: { username: email, password: "not the password at all" },
          });
          expect(refused.status === 401, `a wrong password answered ${refused.status}`);
        }
        const after = await overview();
        for (const period of ["last_24_hours", "last_30_days"]) {
          const [was, now] = [before[period].totals, after[period].totals];
          const grown = {
            signups: now.signups - was.signups,
            logins: now.logins - was.logins,
            failed: now.logins_failed - was.logins_failed,
          };
          expect(JSON.stringify(grown) === JSON.stringify(made), `${period} grew by ${JSON.stringify(grown)}`);
        }
        return after;
      });

      await step(page, "log in at /admin: the Overview is the first screen, with those numbers", async () => {
        await page.goto("/admin");
        await logInWithForm(page, env.adminEmail, env.adminPassword);
        await page.getByRole("heading", { name: "Overview" }).waitFor();
        await page.getByRole("figure", { name: "Logins per hour, last 24 hours" }).waitFor();
        // The form's login is one more.
        const shown = await overview();
        const day = shown.last_24_hours.totals;
        expect(day.logins === after.last_24_hours.totals.logins + 1, "the browser's login is counted");
        const cards = {
          "Sign-ups, 24 h": day.signups,
          "Logins, 24 h": day.logins,
          "Failed logins, 24 h": day.logins_failed,
          "Active sessions": shown.sessions.active,
          Users: shown.users.total,
          Outbox: shown.outbox.pending_dispatch,
          "Webhook deliveries": shown.webhooks.pending_deliveries,
        };
        for (const [label, value] of Object.entries(cards)) {
          const seen = await cardNumber(page, label);
          expect(seen === value, `${label}: the page shows ${seen}, the API ${value}`);
        }
        const hourly = page.getByRole("figure", { name: "Logins per hour, last 24 hours" });
        await hourly.getByText(`${day.logins.toLocaleString("en-GB")} logins, ${day.logins_failed} failed`).waitFor();
        const month = shown.last_30_days.totals;
        await page
          .getByRole("figure", { name: "Sign-ups per day, last 30 days" })
          .getByText(`${month.signups} sign-ups, ${month.signups_failed} refused`)
          .waitFor();
      });

      await step(page, "every chart draws bars", async () => {
        const bars = await eventually(
          () => barsPerChart(page),
          (seen) => Object.keys(seen).length === 4 && Object.values(seen).every((n) => n > 0),
          "bars in the four charts",
        );
        // Logins and failures in this hour and today: at least one stacked pair each.
        expect(bars["Logins per hour, last 24 hours"] >= 2, `hourly login bars: ${JSON.stringify(bars)}`);
        await assertUsable(page);
        await page.mouse.move(0, 0); // no chart tooltip in the picture
        await saveScreenshot(page, "admin-overview");
      });

      await step(page, "at 390 px: nothing sideways, the charts in view", async () => {
        await page.setViewportSize(PHONE_390);
        await page.waitForTimeout(400); // the navigation slides out, the charts resize
        await assertUsable(page);
        const boxes = await page
          .getByRole("figure")
          .evaluateAll((figures) =>
            figures.map((figure) => figure.querySelector("svg.recharts-surface")?.getBoundingClientRect().toJSON()),
          );
        expect(boxes.length === 4, `${boxes.length} charts`);
        for (const box of boxes) {
          expect(box && box.width > 200 && box.height > 100, `a chart's size: ${JSON.stringify(box)}`);
          expect(box.left >= 0 && box.right <= PHONE_390.width, `a chart sticks out: ${JSON.stringify(box)}`);
        }
        await page.getByRole("figure", { name: "Logins per hour, last 24 hours" }).scrollIntoViewIfNeeded();
        const bars = await barsPerChart(page);
        expect(
          Object.values(bars).every((n) => n > 0),
          `bars at phone width: ${JSON.stringify(bars)}`,
        );
        await page.evaluate(() => window.scrollTo(0, 0));
        await saveScreenshot(page, "admin-overview-phone");
      });
      await closeAdmin(page);
    },
  },

  {
    name: "admin: manage users",
    async run(browser) {
      const step = stepper(this.name);
      // A short tag in every fixture email: the search narrows to this run's users.
      const tag = unique("x").slice(-7).toLowerCase();
      const email = (i) => `${PEOPLE[i].toLowerCase().replace(/[^a-z]+/g, ".")}.${tag}@example.com`;

      const page = await newPage(browser, DESKTOP);
      const { users, holder, holderTokens, me } = await step(page, "set up 25 users through the API", async () => {
        const users = await Promise.all(
          PEOPLE.map((name, i) => createUser({ name, email: email(i), role: roleOf(i) })),
        );
        const holder = users[7];
        const holderTokens = await apiLogIn(holder.email, PASSWORD);
        const me = (await call("GET", "/api/v1/users/me", { token: await adminToken() })).body;
        return { users, holder, holderTokens, me };
      });

      await step(page, "log in at /admin, then to the users", async () => {
        await page.goto("/admin");
        await page.getByRole("heading", { name: "Gatehouse admin" }).waitFor();
        await assertUsable(page);
        await logInWithForm(page, env.adminEmail, env.adminPassword);
        await page.getByRole("heading", { name: "Overview" }).waitFor();
        await page.getByRole("link", { name: "Users" }).click();
        await page.getByRole("heading", { name: "Users" }).waitFor();
      });

      let firstPage;
      await step(page, "the table shows page 1 and the total", async () => {
        firstPage = await userRows(page, (rows) => rows.length === 20, "20 rows on page 1");
        const total = await page.getByText(/^\d+ users$/).textContent();
        expect(Number.parseInt(total, 10) >= 26, `total ${total}`);
        await assertUsable(page);
      });

      await step(page, "page 2 shows other users", async () => {
        await page.getByRole("button", { name: "Page 2" }).click();
        await page.waitForURL(/page=2/);
        await userRows(page, (rows) => rows[0]?.email !== firstPage[0].email, "page 2");
      });

      await step(page, "sort by email, ascending then descending", async () => {
        const header = page.getByRole("columnheader", { name: "Email" });
        await header.getByRole("button").click();
        await page.waitForURL(/sort=email&order=asc/);
        expect(!page.url().includes("page=2"), "sorting keeps page 2");
        await header.and(page.locator("[aria-sort=ascending]")).waitFor();
        const ascending = await userRows(page, isSorted("asc"), "sorted A to Z");
        await header.getByRole("button").click();
        // Descending is the default order, so the URL just drops `order`.
        await page.waitForURL((url) => url.searchParams.get("sort") === "email" && !url.searchParams.has("order"));
        await header.and(page.locator("[aria-sort=descending]")).waitFor();
        await userRows(page, (rows) => isSorted("desc")(rows) && rows[0].email !== ascending[0].email, "sorted Z to A");
      });

      await step(page, "search narrows to the 25 fixture users", async () => {
        await page.getByRole("searchbox", { name: "Search" }).fill(tag);
        await page.waitForURL(new RegExp(`search=${tag}`));
        await page.getByText("25 users", { exact: true }).waitFor();
        await userRows(
          page,
          (rows) => rows.length === 20 && rows.every((row) => row.email.includes(tag)),
          "the search",
        );
        await page.getByRole("columnheader", { name: "Email" }).getByRole("button").click();
        await page.waitForURL(/order=asc/);
        await userRows(page, (rows) => rows[0]?.email === email(0), `${email(0)} first`);
        await page.reload();
        await page.getByText("25 users", { exact: true }).waitFor();
        expect(
          (await page.getByRole("searchbox", { name: "Search" }).inputValue()) === tag,
          "the search survives a reload",
        );
      });

      await step(page, "README screenshots of the users table", async () => {
        await page.goto("/admin/users?size=10");
        await userRows(page);
        await assertUsable(page);
        await saveScreenshot(page, "admin");
        await page.setViewportSize(PHONE);
        await page.waitForTimeout(400); // the navigation slides out of view
        await userRows(page);
        await assertUsable(page);
        await saveScreenshot(page, "admin-phone");
        await page.setViewportSize(DESKTOP);
      });

      const created = { name: `Katherine Johnson`, email: `katherine.${tag}@example.com` };
      await step(page, "create a user through the form (the server's password rule shown)", async () => {
        await page.goto("/admin/users");
        await page.getByRole("button", { name: "Create user" }).click();
        const dialog = page.getByRole("dialog", { name: "Create user" });
        await dialog.getByLabel("Name").fill(created.name);
        await dialog.getByLabel("Email").fill(created.email);
        await dialog.getByLabel(/^Password/).fill("katherine johnson 1918");
        await assertUsable(page);
        await dialog.getByRole("button", { name: "Create user" }).click();
        await dialog.getByText("Password must not contain your email address or name").waitFor();
        await dialog.getByLabel(/^Password/).fill(PASSWORD);
        await dialog.getByRole("button", { name: "Create user" }).click();
        await page.getByRole("heading", { name: created.name }).waitFor();
        await assertUsable(page);
      });

      await step(page, "change the new user's role to readonly, with confirmation", async () => {
        await chooseOption(page, "New role", "readonly");
        await page.getByRole("button", { name: "Change role" }).click();
        await page
          .getByRole("dialog")
          .getByText(/Make Katherine Johnson readonly\?/)
          .waitFor();
        await confirm(page, "Change role");
        await page.getByText("Katherine Johnson is now readonly.").waitFor();
        const heading = page.getByRole("heading", { name: created.name }).locator("xpath=..");
        await heading.getByText("readonly", { exact: true }).waitFor();
        const id = page.url().split("/").pop();
        const check = await call("GET", `/api/v1/users/${id}`, { token: await adminToken() });
        expect(check.body.role === "readonly", `role is ${check.body.role}`);
      });

      await step(page, "end the session of a user who is logged in", async () => {
        await page.goto(`/admin/users?search=${encodeURIComponent(holder.email)}`);
        await page.getByRole("link", { name: holder.name }).click();
        await page.getByRole("heading", { name: holder.name }).waitFor();
        const sessions = page.getByRole("table", { name: "Sessions" });
        await sessions.waitFor();
        expect((await sessions.locator("tbody tr").count()) === 1, "one session");
        await assertUsable(page);
        await page.getByRole("button", { name: /^End the session/ }).click();
        await confirm(page, "End session");
        await page.getByText("No active sessions.").waitFor();
        const refresh = await call("POST", "/api/v1/auth/refresh", {
          body: { refresh_token: holderTokens.refresh_token },
        });
        expect(refresh.status === 400, `the ended session still refreshes (${refresh.status})`);
      });

      await step(page, "your own role cannot change, and the last admin cannot go", async () => {
        await page.goto(`/admin/users/${me.id}`);
        await page.getByText("You cannot change your own role; another admin can.").waitFor();
        expect(
          (await page.getByRole("button", { name: "Change role" }).count()) === 0,
          "a role control on your own page",
        );
        const demote = await call("PATCH", `/api/v1/users/${me.id}`, {
          token: await adminToken(),
          body: { role: "user" },
        });
        expect(demote.status === 403, `self-demotion answered ${demote.status}`);
        await page.getByRole("button", { name: "Delete user" }).click();
        await confirm(page, "Delete user");
        await page
          .getByRole("alert")
          .getByText(/This is the last admin/)
          .waitFor();
        await assertUsable(page);
      });

      expect(users.length === 25, "fixtures");
      await closeAdmin(page);
    },
  },

  {
    name: "admin: a readonly admin sees no write controls",
    async run(browser) {
      const step = stepper(this.name);
      const page = await newPage(browser, DESKTOP);
      const reader = { name: "Rosalind Franklin", email: `${unique("reader")}@example.com`, role: "readonly" };
      const me = await step(page, "set up a readonly account", async () => {
        await createUser(reader);
        return (await call("GET", "/api/v1/users/me", { token: await adminToken() })).body;
      });

      await step(page, "log in as readonly: the users table, no Create", async () => {
        await page.goto("/admin/users");
        await logInWithForm(page, reader.email, PASSWORD);
        await page.getByRole("heading", { name: "Users" }).waitFor();
        await userRows(page);
        await page.getByText("readonly", { exact: true }).first().waitFor();
        expect((await page.getByRole("button", { name: "Create user" }).count()) === 0, "a Create user button");
        expect((await page.getByLabel("Show deleted users").count()) === 0, "a deleted-users filter");
        await assertUsable(page);
      });

      await step(page, "a user's page: details and sessions, no write control", async () => {
        await page.goto(`/admin/users/${me.id}`);
        await page.getByRole("heading", { name: me.name }).waitFor();
        await page.getByRole("table", { name: "Sessions" }).waitFor();
        await page.getByText("Your role cannot see the audit trail.").waitFor();
        for (const name of ["Edit name or email", "Change role", "Delete user", "End all sessions", "Export data"]) {
          expect((await page.getByRole("button", { name }).count()) === 0, `a "${name}" button`);
        }
        expect((await page.getByRole("button", { name: /^End the session/ }).count()) === 0, "an End button");
        expect((await page.getByRole("textbox", { name: "New role", exact: true }).count()) === 0, "a role select");
        await assertUsable(page);
      });

      await step(page, "webhooks readable, no Create; the audit trail refused in words", async () => {
        await page.getByRole("link", { name: "Webhooks" }).click();
        await page.getByRole("heading", { name: "Webhooks" }).waitFor();
        await page
          .getByText(/No webhooks yet|^https?:\/\//)
          .first()
          .waitFor();
        expect((await page.getByRole("button", { name: "Create webhook" }).count()) === 0, "a Create webhook button");
        await page.getByRole("link", { name: "Audit trail" }).click();
        await page.getByText(/Your role cannot see the audit trail/).waitFor();
        await assertUsable(page);
      });

      await step(page, "the API refuses a write with this account", async () => {
        const { access_token } = await apiLogIn(reader.email, PASSWORD);
        const answer = await call("POST", "/api/v1/users", {
          token: access_token,
          body: { email: `${unique("nope")}@example.com`, name: "Nope", password: PASSWORD },
        });
        expect(answer.status === 403, `a readonly write answered ${answer.status}`);
      });
      await page.context().close();
    },
  },

  {
    name: "admin: audit trail and webhooks",
    async run(browser) {
      const step = stepper(this.name);
      const page = await adminPage(browser, "/audit");

      await step(page, "filter the audit trail by action", async () => {
        await page.getByRole("heading", { name: "Audit trail" }).waitFor();
        await page.getByLabel("Action").fill("auth.login");
        await page.getByRole("button", { name: "Apply filters" }).click();
        await page.waitForURL(/action=auth\.login/);
        const table = page.getByRole("table", { name: "Audit events" });
        // The rows of the unfiltered trail may still show while the filtered page loads.
        await eventually(
          () => table.locator("tbody tr td:nth-child(2)").allTextContents(),
          (actions) => actions.length > 0 && actions.every((a) => a.startsWith("auth.login")),
          "the filtered audit trail",
        );
        await assertUsable(page);
      });

      const url = `https://hooks.example.com/e2e/${unique("hook")}`;
      await step(page, "create a webhook: the secret is shown once", async () => {
        await page.getByRole("link", { name: "Webhooks" }).click();
        await page.getByRole("button", { name: "Create webhook" }).click();
        const dialog = page.getByRole("dialog", { name: "Create webhook" });
        await dialog.getByLabel("URL").fill(url);
        await dialog.getByLabel("Description").fill("CRM sync");
        await dialog.getByLabel("user.created").check();
        await dialog.getByLabel("user.deleted").check();
        await assertUsable(page);
        await dialog.getByRole("button", { name: "Create webhook" }).click();
        const secret = page.getByRole("dialog", { name: "Webhook created" });
        await secret.getByText(/^whsec_/).waitFor();
        await secret.getByText("This is the only time").waitFor();
        await secret.getByRole("button", { name: "I have stored it" }).click();
        await secret.waitFor({ state: "hidden" });
        await page.getByRole("table", { name: "Webhooks" }).getByRole("link", { name: url }).waitFor();
        await assertUsable(page);
      });

      await step(page, "its page: a test event shows in the deliveries", async () => {
        await page.getByRole("link", { name: url }).click();
        await page.getByText("Recent deliveries").waitFor();
        await page.getByText("Nothing has been sent to this webhook yet.").waitFor();
        await page.getByRole("button", { name: "Send test event" }).click();
        await page.getByRole("table", { name: "Deliveries" }).getByText("webhook.test").waitFor();
        await assertUsable(page);
      });
      await closeAdmin(page);
    },
  },

  {
    name: "admin: phone width",
    async run(browser) {
      const step = stepper(this.name);
      const page = await newPage(browser, PHONE);
      const plain = { name: "Paula Plain", email: `${unique("plain")}@example.com`, role: "user" };

      await step(page, "the login page, and a plain user turned away", async () => {
        await createUser(plain);
        await page.goto("/admin");
        await page.getByLabel("Email").waitFor();
        await assertUsable(page);
        await logInWithForm(page, plain.email, PASSWORD);
        await page.getByRole("heading", { name: "This account cannot use the admin portal" }).waitFor();
        const link = page.getByRole("link", { name: "Go to the Gatehouse app" });
        expect((await link.getAttribute("href")) === "/", "the link to the client app");
        await assertUsable(page);
        await page.getByRole("button", { name: "Log out" }).click();
        await page.getByLabel("Email").waitFor();
      });
      await page.context().close();

      const phone = await adminPage(browser, "/users", PHONE);
      await step(phone, "the users table and the menu", async () => {
        await userRows(phone);
        await assertUsable(phone);
        await phone.getByRole("button", { name: "Open the menu" }).click();
        await phone.getByRole("link", { name: "Audit trail" }).waitFor();
        await assertUsable(phone);
        await phone.getByRole("link", { name: "Users" }).click();
        await phone.getByRole("button", { name: "Open the menu" }).waitFor();
      });

      await step(phone, "a user's page", async () => {
        const [first] = await userRows(phone);
        await phone.getByRole("table", { name: "Users" }).getByRole("link", { name: first.name }).first().click();
        await phone.getByRole("heading", { name: first.name }).waitFor();
        await phone.getByText("Sessions").first().waitFor();
        await assertUsable(phone);
      });
      await closeAdmin(phone);
    },
  },
];
