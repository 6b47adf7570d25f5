import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { LoginForm } from "./LoginForm";
import { apiError, fakeAuthenticator, person, renderWithProviders, requestOptions, server } from "./test-utils";

const jane = person("user", { name: "Jane Doe", email: "jane@example.com" });
const tokens = { access_token: "t1", expires_in: 900, token_type: "bearer", csrf_token: "c1" };
const mfaRequired = (methods = ["totp", "recovery_code"]) =>
  apiError(401, "MFA_REQUIRED", { mfa_token: "mfa-123", methods, expires_in: 300 });

beforeEach(() => {
  server.reset();
  server.on("POST /api/v1/auth/token", mfaRequired());
  server.on("GET /api/v1/users/me", { body: jane });
});

async function password() {
  await userEvent.type(screen.getByLabelText(/^Email/), "j@e.co");
  await userEvent.type(screen.getByLabelText(/^Password/), "pw");
  await userEvent.click(screen.getByRole("button", { name: "Log in" }));
  return screen.findByRole("form", { name: "Two-factor authentication" });
}

describe("the login's second step", () => {
  it("asks for the authenticator code after the right password, and logs in with it", async () => {
    server.on("POST /api/v1/auth/mfa/verify", { body: tokens });
    const onLoggedIn = vi.fn();
    renderWithProviders(<LoginForm onLoggedIn={onLoggedIn} />);
    await password();
    const code = screen.getByLabelText(/^Authentication code/);
    expect(code).toHaveAttribute("autocomplete", "one-time-code");
    await userEvent.type(code, "123456");
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));
    await waitFor(() => expect(onLoggedIn).toHaveBeenCalledWith(expect.objectContaining({ email: jane.email })));
    const verify = server.callsTo("POST", "/api/v1/auth/mfa/verify");
    expect(verify).toHaveLength(1);
    expect(verify[0]!.body).toEqual({ mfa_token: "mfa-123", method: "totp", code: "123456" });
    // The same transport as the password login: the refresh token goes in the cookie.
    expect(verify[0]!.headers.get("X-Token-Transport")).toBe("cookie");
  });

  it("takes a recovery code instead", async () => {
    server.on("POST /api/v1/auth/mfa/verify", { body: tokens });
    const onLoggedIn = vi.fn();
    renderWithProviders(<LoginForm onLoggedIn={onLoggedIn} />);
    await password();
    await userEvent.click(screen.getByRole("switch", { name: "Use a recovery code" }));
    expect(screen.queryByLabelText(/^Authentication code/)).not.toBeInTheDocument();
    await userEvent.type(screen.getByLabelText(/^Recovery code/), " ABCDE-FGHIJ ");
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));
    await waitFor(() => expect(onLoggedIn).toHaveBeenCalled());
    expect(server.callsTo("POST", "/api/v1/auth/mfa/verify")[0]!.body).toEqual({
      mfa_token: "mfa-123",
      method: "recovery_code",
      code: "abcde-fghij",
    });
  });

  it("refuses a code that is not 6 digits before asking the server", async () => {
    renderWithProviders(<LoginForm />);
    await password();
    await userEvent.type(screen.getByLabelText(/^Authentication code/), "12345");
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByText("Enter the 6 digits your authenticator app shows")).toBeInTheDocument();
    expect(server.callsTo("POST", "/api/v1/auth/mfa/verify")).toHaveLength(0);
  });

  it("says how many attempts are left after a wrong code, and sends it once", async () => {
    server.on("POST /api/v1/auth/mfa/verify", apiError(401, "INVALID_MFA_CODE", { attempts_left: 2 }));
    renderWithProviders(<LoginForm />);
    await password();
    await userEvent.type(screen.getByLabelText(/^Authentication code/), "000000");
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("That code is not right. 2 attempts left.");
    expect(screen.getByLabelText(/^Authentication code/)).toHaveValue("");
    expect(server.callsTo("POST", "/api/v1/auth/mfa/verify")).toHaveLength(1);
  });

  it("goes back to the password with a message when the login has expired", async () => {
    server.on("POST /api/v1/auth/mfa/verify", apiError(401, "MFA_TOKEN_INVALID"));
    renderWithProviders(<LoginForm />);
    await password();
    await userEvent.type(screen.getByLabelText(/^Authentication code/), "123456");
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("form", { name: "Log in" })).toBeInTheDocument();
    expect(screen.getByRole("status")).toHaveTextContent(/Log in again/);
    expect(screen.getByLabelText(/^Password/)).toHaveValue("");
  });

  it("says when to try again after too many attempts", async () => {
    server.on("POST /api/v1/auth/mfa/verify", {
      ...apiError(429, "RATE_LIMITED"),
      headers: { "Retry-After": "90" },
    });
    renderWithProviders(<LoginForm />);
    await password();
    await userEvent.type(screen.getByLabelText(/^Authentication code/), "123456");
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Too many attempts. Try again in 2 minutes.");
    // Still on the second step: the mfa_token is not spent by a throttle.
    expect(screen.getByRole("form", { name: "Two-factor authentication" })).toBeInTheDocument();
  });

  it("uses a passkey as the second factor when the account has one", async () => {
    const authenticator = fakeAuthenticator({ credentialId: "key-7" });
    server.on("POST /api/v1/auth/token", mfaRequired(["totp", "recovery_code", "webauthn"]));
    server.on("POST /api/v1/auth/passkey/options", { body: { challenge_id: "ch-1", options: requestOptions } });
    server.on("POST /api/v1/auth/mfa/verify", { body: tokens });
    const onLoggedIn = vi.fn();
    renderWithProviders(<LoginForm onLoggedIn={onLoggedIn} />);
    await password();
    await userEvent.click(screen.getByRole("button", { name: "Use a passkey" }));
    await waitFor(() => expect(onLoggedIn).toHaveBeenCalled());
    expect(server.callsTo("POST", "/api/v1/auth/passkey/options")[0]!.body).toEqual({ mfa_token: "mfa-123" });
    expect(authenticator.get).toHaveLength(1);
    const verify = server.callsTo("POST", "/api/v1/auth/mfa/verify")[0]!;
    expect(verify.body).toMatchObject({
      mfa_token: "mfa-123",
      method: "webauthn",
      challenge_id: "ch-1",
      credential: { id: "key-7", type: "public-key" },
    });
    expect(verify.headers.get("X-Token-Transport")).toBe("cookie");
  });

  it("offers no passkey to an account without one", async () => {
    fakeAuthenticator();
    renderWithProviders(<LoginForm />);
    await password();
    expect(screen.queryByRole("button", { name: "Use a passkey" })).not.toBeInTheDocument();
  });
});

describe("signing in with a passkey alone", () => {
  it("asks for a passwordless challenge and logs in with the browser's answer", async () => {
    fakeAuthenticator({ credentialId: "key-9" });
    server.on("POST /api/v1/auth/passkey/options", { body: { challenge_id: "ch-2", options: requestOptions } });
    server.on("POST /api/v1/auth/passkey/verify", { body: tokens });
    const onLoggedIn = vi.fn();
    renderWithProviders(<LoginForm onLoggedIn={onLoggedIn} />);
    await userEvent.click(screen.getByRole("button", { name: "Sign in with a passkey" }));
    await waitFor(() => expect(onLoggedIn).toHaveBeenCalled());
    expect(server.callsTo("POST", "/api/v1/auth/passkey/options")[0]!.body).toEqual({});
    const verify = server.callsTo("POST", "/api/v1/auth/passkey/verify")[0]!;
    expect(verify.body).toMatchObject({ challenge_id: "ch-2", credential: { id: "key-9" } });
    expect(verify.headers.get("X-Token-Transport")).toBe("cookie");
  });

  it("says so in words when the person closes the browser's prompt", async () => {
    fakeAuthenticator({ refuse: true });
    server.on("POST /api/v1/auth/passkey/options", { body: { challenge_id: "ch-3", options: requestOptions } });
    renderWithProviders(<LoginForm />);
    await userEvent.click(screen.getByRole("button", { name: "Sign in with a passkey" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("The passkey prompt was closed or timed out.");
    expect(server.callsTo("POST", "/api/v1/auth/passkey/verify")).toHaveLength(0);
  });

  it("is not offered by a browser without WebAuthn", async () => {
    renderWithProviders(<LoginForm />);
    expect(await screen.findByRole("form", { name: "Log in" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Sign in with a passkey" })).not.toBeInTheDocument();
  });
});
