import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";
import { apiError, person, server, signIn } from "../../shared/test-utils";
import { PortalRoutes } from "../App";
import { renderAdmin } from "../test-utils";

const crm = {
  id: "8c1e4b2a-7d3f-4a5e-9b6c-0d1e2f3a4b5c",
  client_id: "gh_4yK0x2QfC9pLm7Wb1sTz8A",
  name: "Acme CRM",
  type: "confidential",
  redirect_uris: ["https://crm.example.com/callback"],
  post_logout_redirect_uris: [],
  scopes: ["openid", "profile", "email"],
  grant_types: ["authorization_code"],
  trusted: false,
  logo_url: null,
  enabled: true,
  secret_rotated_at: "2026-01-15T10:30:00Z",
  created_at: "2026-01-15T10:30:00Z",
  updated_at: "2026-01-15T10:30:00Z",
  created_by: null,
};
const wiki = {
  ...crm,
  id: "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9",
  client_id: "gh_wiki",
  name: "Team Wiki",
  type: "public",
  trusted: true,
  enabled: false,
};
const SECRET = "ghcs_2mN7sQk0Yb4rVt9Wx1Lp6Hd3Fg8Jc5Ze0Ua7Ro2Ti4E";
const list = (data: unknown[]) => ({
  body: { data, meta: { page: 1, page_size: 20, total_count: data.length, total_pages: 1 } },
});

beforeEach(() => server.reset());

/** Long values are pasted: typing them key by key only makes the test slow. */
async function paste(field: HTMLElement, text: string) {
  await userEvent.click(field);
  await userEvent.paste(text);
}

function serveClient(client: typeof crm, etag = '"1"') {
  server.on("GET /api/v1/clients", list([client]));
  server.on("GET /api/v1/clients/:id", { body: client, headers: { ETag: etag } });
}

describe("the clients list", () => {
  it("shows name, type, client_id, trusted and status", async () => {
    signIn(person("admin"));
    server.on("GET /api/v1/clients", list([crm, wiki]));
    renderAdmin(<PortalRoutes />, { route: "/clients" });
    const table = await screen.findByRole("table", { name: "Clients" });
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows[0]).toHaveTextContent("Acme CRMconfidentialgh_4yK0x2QfC9pLm7Wb1sTz8Anoenabled");
    expect(rows[1]).toHaveTextContent("Team Wikipublicgh_wikitrusteddisabled");
    expect(screen.getByRole("link", { name: "Register client" })).toHaveAttribute("href", "/clients/new");
    expect(screen.getByRole("link", { name: "Clients" })).toHaveAttribute("aria-current", "page");
  });
});

describe("registering a client", () => {
  it("sends the form as the API's body, then shows the client_id and the secret once", async () => {
    signIn(person("admin"));
    server.on("GET /api/v1/clients", list([]));
    server.on("POST /api/v1/clients", (call) => ({
      status: 201,
      headers: { ETag: '"1"' },
      body: { ...crm, ...(call.body as object), client_secret: SECRET },
    }));
    server.on("GET /api/v1/clients/:id", { body: crm, headers: { ETag: '"1"' } });
    renderAdmin(<PortalRoutes />, { route: "/clients/new" });
    const form = await screen.findByRole("form", { name: "Register client" });
    await userEvent.type(within(form).getByLabelText(/^Name/), "Acme CRM");
    await paste(
      within(form).getByLabelText(/^Redirect URIs/),
      "https://crm.example.com/callback\n\nhttp://localhost:8080/cb ",
    );
    await userEvent.click(within(form).getByLabelText("roles"));
    await userEvent.click(within(form).getByLabelText("refresh_token"));
    await userEvent.click(within(form).getByLabelText("offline_access"));
    await paste(within(form).getByLabelText(/^Logo URL/), "https://crm.example.com/logo.png");
    await userEvent.click(within(form).getByRole("button", { name: "Register client" }));
    await waitFor(() => expect(server.callsTo("POST", "/api/v1/clients")).toHaveLength(1));
    expect(server.callsTo("POST", "/api/v1/clients")[0]!.body).toEqual({
      name: "Acme CRM",
      type: "confidential",
      redirect_uris: ["https://crm.example.com/callback", "http://localhost:8080/cb"],
      post_logout_redirect_uris: [],
      scopes: ["openid", "profile", "email", "roles", "offline_access"],
      grant_types: ["authorization_code", "refresh_token"],
      trusted: false,
      logo_url: "https://crm.example.com/logo.png",
    });
    const credentials = await screen.findByRole("region", { name: "Credentials" });
    expect(credentials).toHaveTextContent(crm.client_id);
    expect(credentials).toHaveTextContent(SECRET);
    expect(credentials).toHaveTextContent("This is the only time Gatehouse shows the client secret");
    expect(within(credentials).getByRole("button", { name: "Copy client_secret" })).toBeInTheDocument();
    // On to the client's page: the secret is nowhere any more, the client_id is.
    await userEvent.click(screen.getByRole("link", { name: "I have stored it: open the client" }));
    expect(await screen.findByRole("heading", { name: "Acme CRM" })).toBeInTheDocument();
    expect(screen.getByText(crm.client_id)).toBeInTheDocument();
    expect(screen.queryByText(SECRET)).not.toBeInTheDocument();
  });

  it("puts the API's refusals on their fields (a redirect URI by its line)", async () => {
    signIn(person("admin"));
    server.on(
      "POST /api/v1/clients",
      apiError(400, "VALIDATION_ERROR", {
        "redirect_uris.1": ["must use https (http only for 127.0.0.1, [::1] or localhost, with any port)"],
        grant_types: ["client_credentials needs a confidential client"],
      }),
    );
    renderAdmin(<PortalRoutes />, { route: "/clients/new" });
    const form = await screen.findByRole("form", { name: "Register client" });
    await userEvent.type(within(form).getByLabelText(/^Name/), "Shop");
    await paste(
      within(form).getByLabelText(/^Redirect URIs/),
      "https://shop.example.com/cb\nhttp://shop.example.com/cb",
    );
    await userEvent.click(within(form).getByRole("button", { name: "Register client" }));
    expect(
      await within(form).findByText(
        "Line 2: Must use https (http only for 127.0.0.1, [::1] or localhost, with any port)",
      ),
    ).toBeInTheDocument();
    expect(within(form).getByText("Client_credentials needs a confidential client")).toBeInTheDocument();
    expect(within(form).getByLabelText(/^Redirect URIs/)).toHaveAttribute("aria-invalid", "true");
  });

  it("checks what it can before asking the server", async () => {
    signIn(person("admin"));
    renderAdmin(<PortalRoutes />, { route: "/clients/new" });
    const form = await screen.findByRole("form", { name: "Register client" });
    await userEvent.click(within(form).getByRole("button", { name: "Register client" }));
    expect(within(form).getByText("Enter a name")).toBeInTheDocument();
    expect(within(form).getByText(/Enter at least one redirect URI/)).toBeInTheDocument();
    expect(server.callsTo("POST", "/api/v1/clients")).toHaveLength(0);
  });
});

describe("a client's page", () => {
  it("edits only what changed, with the version it read", async () => {
    signIn(person("admin"));
    serveClient(crm, '"4"');
    server.on("PATCH /api/v1/clients/:id", (call) => ({
      headers: { ETag: '"5"' },
      body: { ...crm, ...(call.body as object) },
    }));
    renderAdmin(<PortalRoutes />, { route: `/clients/${crm.id}` });
    await userEvent.click(await screen.findByRole("button", { name: "Edit" }));
    const form = await screen.findByRole("form", { name: "Edit client" });
    const name = within(form).getByLabelText(/^Name/);
    await userEvent.clear(name);
    await userEvent.type(name, "Acme CRM (EU)");
    await userEvent.click(within(form).getByLabelText(/^Trusted/));
    await userEvent.click(within(form).getByRole("button", { name: "Save changes" }));
    await waitFor(() => expect(server.callsTo("PATCH", `/api/v1/clients/${crm.id}`)).toHaveLength(1));
    const patch = server.callsTo("PATCH", `/api/v1/clients/${crm.id}`)[0]!;
    expect(patch.body).toEqual({ name: "Acme CRM (EU)", trusted: true });
    expect(patch.headers.get("If-Match")).toBe('"4"');
    expect(await screen.findByRole("heading", { name: "Acme CRM (EU)" })).toBeInTheDocument();
  });

  it("rotates the secret after a confirmation and shows the new one once", async () => {
    signIn(person("admin"));
    serveClient(crm, '"2"');
    server.on("POST /api/v1/clients/:id/rotate-secret", {
      headers: { ETag: '"3"' },
      body: { client_id: crm.client_id, client_secret: "ghcs_new", secret_rotated_at: "2026-02-01T00:00:00Z" },
    });
    renderAdmin(<PortalRoutes />, { route: `/clients/${crm.id}` });
    await userEvent.click(await screen.findByRole("button", { name: "Rotate secret" }));
    await userEvent.click(
      within(await screen.findByRole("dialog", { name: "Rotate the secret" })).getByRole("button", {
        name: "Rotate secret",
      }),
    );
    const shown = await screen.findByRole("dialog", { name: "New client secret" });
    expect(shown).toHaveTextContent("ghcs_new");
    expect(server.callsTo("POST", `/api/v1/clients/${crm.id}/rotate-secret`)[0]!.headers.get("If-Match")).toBe('"2"');
    await userEvent.click(within(shown).getByRole("button", { name: "I have stored it" }));
    await waitFor(() => expect(screen.queryByText("ghcs_new")).not.toBeInTheDocument());
  });

  it("disables after a confirmation, enables, and deletes after a confirmation", async () => {
    signIn(person("admin"));
    const state = { client: { ...crm }, version: 1 };
    server.on("GET /api/v1/clients", list([crm]));
    server.on("GET /api/v1/clients/:id", () => ({ body: state.client, headers: { ETag: `"${state.version}"` } }));
    const toggle = (enabled: boolean) => () => {
      state.client = { ...state.client, enabled };
      state.version += 1;
      return { body: state.client, headers: { ETag: `"${state.version}"` } };
    };
    server.on("POST /api/v1/clients/:id/disable", toggle(false));
    server.on("POST /api/v1/clients/:id/enable", toggle(true));
    server.on("DELETE /api/v1/clients/:id", { status: 204 });
    renderAdmin(<PortalRoutes />, { route: `/clients/${crm.id}` });
    await userEvent.click(await screen.findByRole("button", { name: "Disable" }));
    await userEvent.click(
      within(await screen.findByRole("dialog", { name: "Disable client" })).getByRole("button", {
        name: "Disable client",
      }),
    );
    await userEvent.click(await screen.findByRole("button", { name: "Enable" }));
    await screen.findByRole("button", { name: "Disable" });
    expect(server.callsTo("POST", `/api/v1/clients/${crm.id}/disable`)[0]!.headers.get("If-Match")).toBe('"1"');
    expect(server.callsTo("POST", `/api/v1/clients/${crm.id}/enable`)[0]!.headers.get("If-Match")).toBe('"2"');
    await userEvent.click(screen.getByRole("button", { name: "Delete" }));
    await userEvent.click(
      within(await screen.findByRole("dialog", { name: "Delete client" })).getByRole("button", {
        name: "Delete client",
      }),
    );
    await waitFor(() => expect(server.callsTo("DELETE", `/api/v1/clients/${crm.id}`)).toHaveLength(1));
    expect(server.callsTo("DELETE", `/api/v1/clients/${crm.id}`)[0]!.headers.get("If-Match")).toBe('"3"');
    expect(await screen.findByRole("heading", { name: "Clients" })).toBeInTheDocument();
  });

  it("says when someone else changed the client in the meantime", async () => {
    signIn(person("admin"));
    serveClient(crm);
    server.on("POST /api/v1/clients/:id/rotate-secret", apiError(409, "VERSION_CONFLICT"));
    renderAdmin(<PortalRoutes />, { route: `/clients/${crm.id}` });
    await userEvent.click(await screen.findByRole("button", { name: "Rotate secret" }));
    await userEvent.click(
      within(await screen.findByRole("dialog", { name: "Rotate the secret" })).getByRole("button", {
        name: "Rotate secret",
      }),
    );
    expect(await screen.findByRole("alert")).toHaveTextContent("Someone else changed this in the meantime");
  });
});

describe("a readonly admin", () => {
  it("sees the clients and no control that writes", async () => {
    signIn(person("readonly"));
    serveClient(crm);
    renderAdmin(<PortalRoutes />, { route: "/clients" });
    expect(await screen.findByRole("link", { name: "Acme CRM" })).toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "Register client" })).not.toBeInTheDocument();
    await userEvent.click(screen.getByRole("link", { name: "Acme CRM" }));
    expect(await screen.findByRole("heading", { name: "Acme CRM" })).toBeInTheDocument();
    expect(screen.getByText("https://crm.example.com/callback")).toBeInTheDocument();
    for (const name of ["Edit", "Disable", "Rotate secret", "Delete"]) {
      expect(screen.queryByRole("button", { name })).not.toBeInTheDocument();
    }
    expect(screen.queryByRole("region", { name: "Actions" })).not.toBeInTheDocument();
  });

  it("cannot open the registration form", async () => {
    signIn(person("readonly"));
    renderAdmin(<PortalRoutes />, { route: "/clients/new" });
    expect(await screen.findByText("Only an admin can register clients.")).toBeInTheDocument();
    expect(screen.queryByRole("form", { name: "Register client" })).not.toBeInTheDocument();
    expect(server.screenCalls()).toHaveLength(0);
  });
});
