import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import {
  apiError,
  fakeAuthenticator,
  person,
  renderWithProviders,
  requestOptions,
  server,
  signIn,
} from "../../shared/test-utils";
import { App } from "../App";
import { browser } from "./returnTo";

const jane = person("user", { name: "Jane Doe", email: "jane@example.com" });
const tokens = { access_token: "t1", expires_in: 900, token_type: "bearer" };
const AUTHORIZE = "/oauth2/authorize?response_type=code&client_id=gh_abc&scope=openid%20email&state=xyz";
const loginAt = (extra: Record<string, string> = {}) =>
  `/login?${new URLSearchParams({ return_to: AUTHORIZE, ...extra })}`;

let assign: MockInstance<(url: string) => void>;

beforeEach(() => {
  server.reset();
  assign = vi.spyOn(browser, "assign").mockImplementation(() => {});
  server.on("POST /api/v1/oauth2/session", { status: 204 });
});

afterEach(() => vi.restoreAllMocks());

async function logInWithPassword(email = "jane@example.com") {
  const field = await screen.findByLabelText(/^Email/);
  await userEvent.clear(field);
  await userEvent.type(field, email);
  await userEvent.type(screen.getByLabelText(/^Password/), "pw");
  await userEvent.click(screen.getByRole("button", { name: "Log in" }));
}

describe("the login an application sends people to", () => {
  it("after the password, starts the browser session and then goes back to the authorize endpoint", async () => {
    server.on("POST /api/v1/auth/token", { body: tokens });
    server.on("GET /api/v1/users/me", { body: jane });
    renderWithProviders(<App />, { route: loginAt({ login_hint: "jane@example.com" }) });
    // The application's hint is already in the form.
    expect(await screen.findByLabelText(/^Email/)).toHaveValue("jane@example.com");
    expect(server.callsTo("POST", "/api/v1/oauth2/session")).toHaveLength(0);
    await logInWithPassword();
    await waitFor(() => expect(assign).toHaveBeenCalledWith(AUTHORIZE));
    const started = server.callsTo("POST", "/api/v1/oauth2/session");
    expect(started).toHaveLength(1);
    // With the access token of the login that just happened.
    expect(started[0]!.headers.get("Authorization")).toBe("Bearer t1");
    // The session first, the navigation after it.
    const order = server.calls.map((call) => call.path);
    expect(order.indexOf("/api/v1/oauth2/session")).toBeGreaterThan(order.indexOf("/api/v1/auth/token"));
    expect(assign).toHaveBeenCalledTimes(1);
  });

  it("after the second factor too", async () => {
    server.on("POST /api/v1/auth/token", apiError(401, "MFA_REQUIRED", { mfa_token: "m1", methods: ["totp"] }));
    server.on("POST /api/v1/auth/mfa/verify", { body: tokens });
    server.on("GET /api/v1/users/me", { body: jane });
    renderWithProviders(<App />, { route: loginAt() });
    await logInWithPassword();
    await userEvent.type(await screen.findByLabelText(/^Authentication code/), "123456");
    expect(server.callsTo("POST", "/api/v1/oauth2/session")).toHaveLength(0);
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));
    await waitFor(() => expect(assign).toHaveBeenCalledWith(AUTHORIZE));
    expect(server.callsTo("POST", "/api/v1/oauth2/session")).toHaveLength(1);
  });

  it("after a passkey alone too", async () => {
    fakeAuthenticator();
    server.on("POST /api/v1/auth/passkey/options", { body: { challenge_id: "c1", options: requestOptions } });
    server.on("POST /api/v1/auth/passkey/verify", { body: tokens });
    server.on("GET /api/v1/users/me", { body: jane });
    renderWithProviders(<App />, { route: loginAt() });
    await userEvent.click(await screen.findByRole("button", { name: "Sign in with a passkey" }));
    await waitFor(() => expect(assign).toHaveBeenCalledWith(AUTHORIZE));
    expect(server.callsTo("POST", "/api/v1/oauth2/session")).toHaveLength(1);
  });

  it("goes straight on when someone is logged in already", async () => {
    signIn(jane);
    renderWithProviders(<App />, { route: loginAt() });
    await waitFor(() => expect(assign).toHaveBeenCalledWith(AUTHORIZE));
    expect(server.callsTo("POST", "/api/v1/oauth2/session")).toHaveLength(1);
    expect(screen.queryByLabelText(/^Password/)).not.toBeInTheDocument();
  });

  it("shows the form to someone logged in when the application wants a new login (fresh=1)", async () => {
    signIn(jane);
    server.on("POST /api/v1/auth/token", { body: tokens });
    renderWithProviders(<App />, { route: loginAt({ fresh: "1" }) });
    expect(await screen.findByText(/You are logged in as jane@example.com/)).toBeInTheDocument();
    expect(server.callsTo("POST", "/api/v1/oauth2/session")).toHaveLength(0);
    expect(assign).not.toHaveBeenCalled();
    await logInWithPassword();
    await waitFor(() => expect(assign).toHaveBeenCalledWith(AUTHORIZE));
    expect(server.callsTo("POST", "/api/v1/auth/token")).toHaveLength(1);
    expect(server.callsTo("POST", "/api/v1/oauth2/session")).toHaveLength(1);
  });

  it("stays and says so when the session cannot be started, and tries again on request", async () => {
    signIn(jane);
    server.on("POST /api/v1/oauth2/session", apiError(503, "SERVICE_UNAVAILABLE"));
    renderWithProviders(<App />, { route: loginAt() });
    expect(await screen.findByRole("alert")).toHaveTextContent("The service is busy right now");
    expect(assign).not.toHaveBeenCalled();
    server.on("POST /api/v1/oauth2/session", { status: 204 });
    await userEvent.click(screen.getByRole("button", { name: "Try again" }));
    await waitFor(() => expect(assign).toHaveBeenCalledWith(AUTHORIZE));
  });

  it("ignores a return_to that is not the authorize endpoint: an ordinary login", async () => {
    signIn(jane);
    server.on("GET /api/v1/users/me/mfa", { body: {} });
    renderWithProviders(<App />, { route: "/login?return_to=https://evil.example/oauth2/authorize?x=1" });
    // Logged in already: the ordinary login sends them to their profile.
    await waitFor(() => expect(screen.queryByRole("heading", { name: "Log in" })).not.toBeInTheDocument());
    expect(server.callsTo("POST", "/api/v1/oauth2/session")).toHaveLength(0);
    expect(assign).not.toHaveBeenCalled();
  });

  it("ignores such a return_to after a login too", async () => {
    server.on("POST /api/v1/auth/token", { body: tokens });
    server.on("GET /api/v1/users/me", { body: jane });
    renderWithProviders(<App />, { route: "/login?return_to=//evil.example/oauth2/authorize?x=1" });
    await logInWithPassword();
    await waitFor(() => expect(server.callsTo("GET", "/api/v1/users/me").length).toBeGreaterThan(0));
    await waitFor(() => expect(screen.queryByRole("heading", { name: "Log in" })).not.toBeInTheDocument());
    expect(server.callsTo("POST", "/api/v1/oauth2/session")).toHaveLength(0);
    expect(assign).not.toHaveBeenCalled();
  });
});
