// OpenID Connect clients: the admin portal's Clients pages, and the client app's side of
// "Log in with Gatehouse" (the login that leads back to /oauth2/authorize, the consent
// page, Security → Connected apps). Fixtures are made through the API.
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import {
  apiLogIn,
  assertUsable,
  callApi as call,
  DESKTOP,
  env,
  field,
  logInWithForm,
  newPage,
  PHONE,
  saveScreenshot,
  stepper,
  unique,
} from "./harness.mjs";

const PASSWORD = "copper lantern meadow 61";

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

// An admin API token, logged in again as it nears the end of its short life.
let admin = null;
async function adminToken() {
  if (!admin || Date.now() - admin.at > (env.accessTtl - 10) * 1000) {
    admin = { ...(await apiLogIn(env.adminEmail, env.adminPassword)), at: Date.now() };
  }
  return admin.access_token;
}

async function registerClient(body) {
  const answer = await call("POST", "/api/v1/clients", { token: await adminToken(), body });
  if (answer.status !== 201) throw new Error(`register ${body.name}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

async function getClient(id) {
  const answer = await call("GET", `/api/v1/clients/${id}`, { token: await adminToken() });
  if (answer.status !== 200) throw new Error(`client ${id}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

async function createUser(fields) {
  const answer = await call("POST", "/api/v1/users", {
    token: await adminToken(),
    body: { password: PASSWORD, ...fields },
  });
  if (answer.status !== 201) throw new Error(`create ${fields.email}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

async function confirm(page, title, label) {
  const dialog = page.getByRole("dialog", { name: title });
  await dialog.getByRole("button", { name: label }).click();
  await dialog.waitFor({ state: "hidden" });
}

/** The value under a copyable label (client_id, client_secret) in `scope`. */
async function copyable(scope, label) {
  return (await scope.getByLabel(label, { exact: true }).textContent()).trim();
}

/** Whether this server has the OpenID provider's browser endpoints yet (they land separately). */
async function providerServed() {
  const answer = await call("POST", "/api/v1/oauth2/session");
  return answer.status !== 404;
}

/** A stand-in for the application's server: it answers every request with a line of text. */
async function listen() {
  const server = createServer((_, response) => {
    response.writeHead(200, { "Content-Type": "text/plain" });
    response.end("the application");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => {
      // The browser may keep a connection open: it must not hold the scenario up.
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

function pkce() {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  return { verifier, challenge };
}

export const scenarios = [
  {
    name: "clients: an admin registers a client, sees its secret once, rotates it and disables it",
    async run(browser) {
      const step = stepper(this.name);
      const name = "Acme CRM";
      const page = await newPage(browser, DESKTOP);

      await step(page, "more clients for the list, through the API", async () => {
        await registerClient({
          name: "Team Wiki",
          type: "public",
          redirect_uris: ["https://wiki.example.com/callback"],
          scopes: ["openid", "profile", "email"],
          grant_types: ["authorization_code"],
          trusted: true,
        });
        const nightly = await registerClient({
          name: "Nightly export",
          type: "confidential",
          scopes: ["roles"],
          grant_types: ["client_credentials"],
        });
        const disabled = await call("POST", `/api/v1/clients/${nightly.id}/disable`, { token: await adminToken() });
        expect(disabled.status === 200, `disable: ${disabled.status}`);
      });

      let created;

      await step(page, "log in at /admin/clients: the Clients section lists them", async () => {
        await page.goto("/admin/clients");
        await logInWithForm(page, env.adminEmail, env.adminPassword);
        await page.getByRole("heading", { name: "Clients" }).waitFor();
        await page.getByRole("table", { name: "Clients" }).getByRole("link", { name: "Team Wiki" }).first().waitFor();
        await assertUsable(page);
      });

      await step(page, "register a client: a refusal shown at its field, then the secret once", async () => {
        await page.getByRole("link", { name: "Register client" }).click();
        const form = page.getByRole("form", { name: "Register client" });
        await field(form, "Name").fill(name);
        await field(form, "Redirect URIs").fill("https://crm.example.com/callback\nhttp://crm.example.com/callback");
        await form.getByLabel("refresh_token", { exact: true }).check();
        await form.getByLabel("offline_access", { exact: true }).check();
        await assertUsable(page);
        await form.getByRole("button", { name: "Register client" }).click();
        await form.getByText(/^Line 2: Must use https/).waitFor();
        await field(form, "Redirect URIs").fill("https://crm.example.com/callback\nhttp://localhost:8765/callback");
        await form.getByRole("button", { name: "Register client" }).click();
        const credentials = page.getByRole("region", { name: "Credentials" });
        await credentials.waitFor();
        const clientId = await copyable(credentials, "client_id");
        const secret = await copyable(credentials, "client_secret");
        expect(/^gh_/.test(clientId), `client_id ${clientId}`);
        expect(/^ghcs_/.test(secret), `secret ${secret.slice(0, 8)}…`);
        await assertUsable(page);
        await saveScreenshot(page, "admin-client-created");
        const list = await call("GET", "/api/v1/clients?page_size=100", { token: await adminToken() });
        created = list.body.data.find((client) => client.client_id === clientId);
        expect(created, "the new client is in the API's list");
        expect(
          JSON.stringify(created.grant_types) === '["authorization_code","refresh_token"]',
          `grant types ${created.grant_types}`,
        );
        created.secret = secret;
      });

      await step(page, "its page shows the client_id, never the secret", async () => {
        await page.getByRole("link", { name: "I have stored it: open the client" }).click();
        await page.getByRole("heading", { name, exact: true }).waitFor();
        expect((await copyable(page, "client_id")) === created.client_id, "the client_id on its page");
        const text = await page.locator("body").textContent();
        expect(!text.includes(created.secret), "the secret is on the client's page");
        await assertUsable(page);
        await saveScreenshot(page, "admin-client");
      });

      await step(page, "edit it: the version is sent, the change is kept", async () => {
        await page.getByRole("button", { name: "Edit" }).click();
        const form = page.getByRole("form", { name: "Edit client" });
        await field(form, "Post-logout redirect URIs").fill("https://crm.example.com/");
        await form.getByRole("button", { name: "Save changes" }).click();
        await page.getByText("Changes saved.").waitFor();
        const read = await getClient(created.id);
        expect(
          JSON.stringify(read.post_logout_redirect_uris) === '["https://crm.example.com/"]',
          `post-logout URIs ${read.post_logout_redirect_uris}`,
        );
      });

      await step(page, "rotate the secret: a new one, shown once", async () => {
        await page.getByRole("button", { name: "Rotate secret" }).click();
        await confirm(page, "Rotate the secret", "Rotate secret");
        const dialog = page.getByRole("dialog", { name: "New client secret" });
        const secret = await copyable(dialog, "client_secret");
        expect(/^ghcs_/.test(secret) && secret !== created.secret, "a new secret");
        await assertUsable(page);
        await dialog.getByRole("button", { name: "I have stored it" }).click();
        await dialog.waitFor({ state: "hidden" });
        expect(!(await page.locator("body").textContent()).includes(secret), "the secret stays on the page");
        const read = await getClient(created.id);
        expect(read.secret_rotated_at > created.secret_rotated_at, "secret_rotated_at moved on");
      });

      await step(page, "disable it, then enable it again", async () => {
        await page.getByRole("button", { name: "Disable" }).click();
        await confirm(page, "Disable client", "Disable client");
        await page.getByRole("button", { name: "Enable" }).waitFor();
        expect((await getClient(created.id)).enabled === false, "disabled in the API");
        await page.getByRole("button", { name: "Enable" }).click();
        await page.getByRole("button", { name: "Disable" }).waitFor();
        expect((await getClient(created.id)).enabled === true, "enabled in the API");
      });

      await step(page, "the list, at desktop and phone width", async () => {
        await page.getByRole("link", { name: "← All clients" }).click();
        const table = page.getByRole("table", { name: "Clients" });
        await table.getByRole("link", { name, exact: true }).waitFor();
        await assertUsable(page);
        await page.mouse.move(0, 0);
        await saveScreenshot(page, "admin-clients");
        await page.setViewportSize(PHONE);
        await page.waitForTimeout(400); // the navigation slides out of view
        await assertUsable(page);
        await page.setViewportSize(DESKTOP);
      });

      await step(page, "delete it, after a confirmation", async () => {
        await page.getByRole("table", { name: "Clients" }).getByRole("link", { name, exact: true }).click();
        await page.getByRole("button", { name: "Delete" }).click();
        await confirm(page, "Delete client", "Delete client");
        await page.getByRole("heading", { name: "Clients" }).waitFor();
        const gone = await call("GET", `/api/v1/clients/${created.id}`, { token: await adminToken() });
        expect(gone.status === 404, `the deleted client answers ${gone.status}`);
      });
      await page.context().close();
    },
  },
  {
    name: "clients: a readonly admin reads clients and writes nothing",
    async run(browser) {
      const step = stepper(this.name);
      const reader = { name: "Ruth Reader", email: `${unique("reader")}@example.com`, role: "readonly" };
      const page = await newPage(browser, DESKTOP);
      const client = await step(page, "a client and a readonly admin, through the API", async () => {
        await createUser(reader);
        return registerClient({
          name: "Reader's view",
          type: "confidential",
          redirect_uris: ["https://view.example.com/callback"],
          scopes: ["openid"],
          grant_types: ["authorization_code"],
        });
      });

      await step(page, "the list without Register, the page without actions", async () => {
        await page.goto("/admin/clients");
        await logInWithForm(page, reader.email, PASSWORD);
        await page.getByRole("heading", { name: "Clients" }).waitFor();
        await page.getByRole("table", { name: "Clients" }).getByRole("link", { name: client.name }).first().waitFor();
        expect((await page.getByRole("link", { name: "Register client" }).count()) === 0, "Register for readonly");
        await page.goto(`/admin/clients/${client.id}`);
        await page.getByRole("heading", { name: client.name }).waitFor();
        for (const name of ["Edit", "Disable", "Rotate secret", "Delete"]) {
          expect((await page.getByRole("button", { name, exact: true }).count()) === 0, `${name} for readonly`);
        }
        await page.goto("/admin/clients/new");
        await page.getByText("Only an admin can register clients.").waitFor();
        await assertUsable(page);
      });
      await page.context().close();
    },
  },
  {
    // Needs the OpenID provider's browser side (/oauth2/authorize, /api/v1/oauth2/*,
    // connected apps); on a server without it, the scenario says so and stops.
    name: "clients: log in with Gatehouse, consent, then Connected apps",
    async run(browser) {
      const step = stepper(this.name);
      if (!(await providerServed())) {
        console.log("  skip clients › consent and connected apps: this server has no /api/v1/oauth2 yet");
        return;
      }
      // The application's callback: a page of its own on loopback, as a native app's would be.
      const application = await listen();
      const callback = `${application.origin}/callback`;
      const person = { name: "Jane Doe", email: "jane.doe@example.com", role: "user" };
      const page = await newPage(browser, DESKTOP);
      const client = await step(page, "a client that asks for consent, and a person, through the API", async () => {
        await createUser(person);
        return registerClient({
          name: "Helpdesk Pro",
          type: "public",
          redirect_uris: [callback],
          scopes: ["openid", "profile", "email"],
          grant_types: ["authorization_code"],
        });
      });
      const { challenge } = pkce();
      const state = unique("state");
      const authorize = `/oauth2/authorize?${new URLSearchParams({
        response_type: "code",
        client_id: client.client_id,
        redirect_uri: callback,
        scope: "openid profile email",
        state,
        code_challenge: challenge,
        code_challenge_method: "S256",
        login_hint: person.email,
      })}`;

      await step(page, "the application sends the person to log in: the hint is filled in", async () => {
        await page.goto(authorize);
        await page.getByRole("heading", { name: "Log in" }).waitFor();
        const url = new URL(page.url());
        expect(url.pathname === "/login", `at ${url}`);
        expect(url.searchParams.get("return_to")?.startsWith("/oauth2/authorize?"), `return_to in ${url}`);
        expect((await field(page, "Email").inputValue()) === person.email, "the login hint");
        await assertUsable(page);
      });

      await step(page, "after the login, the consent page names the client and the scopes", async () => {
        await field(page, "Password").fill(PASSWORD);
        await page.getByRole("button", { name: "Log in", exact: true }).click();
        await page.getByRole("heading", { name: "Allow Helpdesk Pro?" }).waitFor();
        const asked = page.getByRole("list", { name: "What the application asks for" });
        for (const words of ["Sign you in", "See your name", "See your email address"]) {
          await asked.getByText(words).waitFor();
        }
        await assertUsable(page);
        await saveScreenshot(page, "client-consent");
        await page.setViewportSize(PHONE);
        await assertUsable(page);
        await page.setViewportSize(DESKTOP);
      });

      await step(page, "Allow: back to the application with a code and the state", async () => {
        await page.getByRole("button", { name: "Allow", exact: true }).click();
        await page.waitForURL((url) => url.href.startsWith(callback));
        const back = new URL(page.url());
        expect(back.searchParams.get("code"), `no code in ${back}`);
        expect(back.searchParams.get("state") === state, `state in ${back}`);
      });

      await step(page, "Security → Connected apps lists it; Remove access takes it away", async () => {
        await page.goto("/security");
        const card = page.getByRole("region", { name: "Connected apps" });
        await card.getByText("Helpdesk Pro").waitFor();
        await card.getByText("See your email address").waitFor();
        await assertUsable(page);
        await card.scrollIntoViewIfNeeded();
        await saveScreenshot(page, "client-connected-apps");
        await card.getByRole("button", { name: "Remove access of Helpdesk Pro" }).click();
        await confirm(page, "Remove Helpdesk Pro's access?", "Remove access");
        await card.getByText("No application has access to your account.").waitFor();
      });

      await step(page, "the next authorization asks again", async () => {
        await page.goto(authorize);
        await page.getByRole("heading", { name: "Allow Helpdesk Pro?" }).waitFor();
        await page.getByRole("button", { name: "Deny", exact: true }).click();
        await page.waitForURL((url) => url.href.startsWith(callback));
        const back = new URL(page.url());
        expect(back.searchParams.get("error") === "access_denied", `error in ${back}`);
        expect(back.searchParams.get("state") === state, `state in ${back}`);
      });
      await page.context().close();
      await application.close();
    },
  },
];
