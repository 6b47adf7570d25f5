import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { MfaStatus, TotpEnrolment } from "../shared/api";
import {
  apiError,
  creationOptions,
  fakeAuthenticator,
  mfaStatus,
  person,
  renderWithProviders,
  server,
  signIn,
} from "../shared/test-utils";
import { App } from "./App";
import { PasswordPage } from "./pages/PasswordPage";
import { SecurityPage } from "./pages/SecurityPage";

const jane = person("user", { name: "Jane Doe", email: "jane@example.com" });
const CODES = Array.from({ length: 10 }, (_, i) => `code${i}-abcde`);
// A QR code that would run script if it were put into the page as markup.
const QR =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 29 29"><script>window.hacked = true</script><path d="M4 4h7v7H4z"/></svg>';
const enrolment: TotpEnrolment = {
  secret: "JBSWY3DPEHPK3PXP",
  otpauth_uri: "otpauth://totp/Gatehouse:jane%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Gatehouse",
  qr_svg: QR,
};
const withTotp = mfaStatus({
  enabled: true,
  totp: { enabled: true, confirmed_at: "2026-02-01T10:00:00Z" },
  recovery_codes_left: 8,
});
const stepUpRequired = apiError(403, "STEP_UP_REQUIRED", {
  methods: ["totp", "recovery_code"],
  step_up_url: "/api/v1/auth/mfa/step-up",
});

beforeEach(() => {
  server.reset();
  signIn(jane);
});

/** GET /users/me/mfa answers `current` until a test changes it. */
function serveStatus(initial: MfaStatus) {
  const state = { current: initial };
  server.on("GET /api/v1/users/me/mfa", () => ({ body: state.current }));
  server.on("GET /api/v1/users/me/sessions", { body: [] });
  return state;
}

describe("setting up an authenticator app", () => {
  it("goes from the password to the QR code to the recovery codes, shown once", async () => {
    const state = serveStatus(mfaStatus());
    server.on("POST /api/v1/users/me/mfa/totp", { status: 201, body: enrolment });
    server.on("POST /api/v1/users/me/mfa/totp/confirm", () => {
      state.current = { ...withTotp, recovery_codes_left: 10 };
      return { body: { recovery_codes: CODES } };
    });
    const clipboard = { writeText: vi.fn(async () => {}) };
    Object.defineProperty(navigator, "clipboard", { value: clipboard, configurable: true });
    renderWithProviders(<SecurityPage />, { route: "/security", withNotifications: true, mantineEnv: "test" });

    await userEvent.click(await screen.findByRole("button", { name: "Set up authenticator app" }));
    await userEvent.type(screen.getByLabelText(/^Current password/), "pw");
    await userEvent.click(screen.getByRole("button", { name: "Continue" }));

    const qr = await screen.findByRole("img", { name: "QR code for your authenticator app" });
    expect(qr.getAttribute("src")).toMatch(/^data:image\/svg\+xml;base64,/);
    expect(atob(qr.getAttribute("src")!.split(",")[1]!)).toBe(QR);
    // The SVG is an image, not markup: its script is nowhere in the page.
    expect(document.querySelector("svg script")).toBeNull();
    expect(server.callsTo("POST", "/api/v1/users/me/mfa/totp")[0]!.body).toEqual({ current_password: "pw" });

    await userEvent.click(screen.getByRole("button", { name: "Can't scan? Enter this key" }));
    expect(screen.getByText("JBSW Y3DP EHPK 3PXP")).toBeInTheDocument();

    await userEvent.type(screen.getByLabelText(/^Authentication code/), "123 456");
    await userEvent.click(screen.getByRole("button", { name: "Turn on" }));
    const list = await screen.findByRole("list", { name: "Recovery codes" });
    expect(within(list).getAllByRole("listitem")).toHaveLength(10);
    expect(server.callsTo("POST", "/api/v1/users/me/mfa/totp/confirm")[0]!.body).toEqual({ code: "123456" });

    await userEvent.click(screen.getByRole("button", { name: "Copy" }));
    expect(clipboard.writeText).toHaveBeenCalledWith(expect.stringContaining(CODES.join("\n")));

    const done = screen.getByRole("button", { name: "Done" });
    expect(done).toBeDisabled();
    await userEvent.click(screen.getByRole("checkbox", { name: "I saved them" }));
    await userEvent.click(done);
    // Gone for good: the page shows the count the API keeps, never the codes again.
    expect(screen.queryByRole("list", { name: "Recovery codes" })).not.toBeInTheDocument();
    expect(screen.queryByText(CODES[0]!)).not.toBeInTheDocument();
    expect(await screen.findByText(/10 recovery codes left/)).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Remove authenticator app" })).toBeInTheDocument();
    Reflect.deleteProperty(navigator, "clipboard");
  });

  it("puts a wrong password and a wrong code on their fields", async () => {
    serveStatus(mfaStatus());
    let enrol = apiError(403, "INVALID_CURRENT_PASSWORD");
    server.on("POST /api/v1/users/me/mfa/totp", () => enrol);
    server.on("POST /api/v1/users/me/mfa/totp/confirm", apiError(400, "INVALID_MFA_CODE"));
    renderWithProviders(<SecurityPage />, { route: "/security", mantineEnv: "test" });
    await userEvent.click(await screen.findByRole("button", { name: "Set up authenticator app" }));
    await userEvent.type(screen.getByLabelText(/^Current password/), "wrong");
    await userEvent.click(screen.getByRole("button", { name: "Continue" }));
    await waitFor(() =>
      expect(screen.getByLabelText(/^Current password/)).toHaveAccessibleDescription(
        "Your current password is not right.",
      ),
    );

    enrol = { status: 201, body: enrolment };
    await userEvent.type(screen.getByLabelText(/^Current password/), "right");
    await userEvent.click(screen.getByRole("button", { name: "Continue" }));
    await userEvent.type(await screen.findByLabelText(/^Authentication code/), "999999");
    await userEvent.click(screen.getByRole("button", { name: "Turn on" }));
    await waitFor(() =>
      expect(screen.getByLabelText(/^Authentication code/)).toHaveAccessibleDescription(
        expect.stringContaining("That code is not right."),
      ),
    );
  });
});

describe("step-up", () => {
  it("asks for a code when removing the app needs one, then does it without a second click", async () => {
    const state = serveStatus(withTotp);
    let stepped = false;
    server.on("DELETE /api/v1/users/me/mfa/totp", () => {
      if (!stepped) return stepUpRequired;
      state.current = mfaStatus();
      return { status: 204 };
    });
    server.on("POST /api/v1/auth/mfa/step-up", (call) => {
      if ((call.body as { code: string }).code !== "654321") return apiError(401, "INVALID_MFA_CODE");
      stepped = true;
      return { body: { step_up_expires_at: "2026-02-01T10:05:00Z" } };
    });
    renderWithProviders(<SecurityPage />, { route: "/security", withNotifications: true, mantineEnv: "test" });
    await userEvent.click(await screen.findByRole("button", { name: "Remove authenticator app" }));
    await userEvent.click(within(await screen.findByRole("dialog")).getByRole("button", { name: "Remove app" }));

    const modal = await screen.findByRole("dialog", { name: "Confirm it's you" });
    await userEvent.type(within(modal).getByLabelText(/^Authentication code/), "111111");
    await userEvent.click(within(modal).getByRole("button", { name: "Confirm" }));
    expect(await within(modal).findByRole("alert")).toHaveTextContent("That code is not right.");
    // A wrong code is not mistaken for an expired token: sent once, not again after a refresh.
    expect(server.callsTo("POST", "/api/v1/auth/mfa/step-up")).toHaveLength(1);

    await userEvent.type(within(modal).getByLabelText(/^Authentication code/), "654321");
    await userEvent.click(within(modal).getByRole("button", { name: "Confirm" }));
    expect(await screen.findByText("The authenticator app is removed.")).toBeInTheDocument();
    expect(server.callsTo("POST", "/api/v1/auth/mfa/step-up")[1]!.body).toEqual({ method: "totp", code: "654321" });
    expect(server.callsTo("DELETE", "/api/v1/users/me/mfa/totp")).toHaveLength(2);
    expect(await screen.findByRole("button", { name: "Set up authenticator app" })).toBeInTheDocument();
  });

  it("guards the password change too, and says nothing changed when the person closes it", async () => {
    server.on("POST /api/v1/users/me/password", stepUpRequired);
    renderWithProviders(<PasswordPage />, { route: "/password" });
    await userEvent.type(await screen.findByLabelText(/^Current password/), "old secret words");
    await userEvent.type(screen.getByLabelText(/^New password/), "harbour violet quartz 58");
    await userEvent.type(screen.getByLabelText(/^Confirm new password/), "harbour violet quartz 58");
    await userEvent.click(screen.getByRole("button", { name: "Change password" }));
    const modal = await screen.findByRole("dialog", { name: "Confirm it's you" });
    await userEvent.click(within(modal).getByRole("switch", { name: "Use a recovery code" }));
    await userEvent.click(screen.getByRole("button", { name: "Close" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("This change needs your second factor first.");
    expect(server.callsTo("POST", "/api/v1/users/me/password")).toHaveLength(1);
  });
});

describe("passkeys", () => {
  it("adds the first passkey with the password, and shows the recovery codes it made", async () => {
    const authenticator = fakeAuthenticator({ credentialId: "new-key" });
    const state = serveStatus(mfaStatus());
    const passkey = {
      id: "7d1f3c52-0000-4000-8000-000000000001",
      name: "YubiKey",
      created_at: "2026-02-01T10:00:00Z",
      last_used_at: null,
      backed_up: false,
      transports: ["usb"],
    };
    server.on("POST /api/v1/users/me/passkeys/registration-options", {
      body: { challenge_id: "reg-1", options: creationOptions },
    });
    server.on("POST /api/v1/users/me/passkeys", () => {
      state.current = mfaStatus({ enabled: true, passkeys: [passkey], recovery_codes_left: 10 });
      return { status: 201, body: { passkey, recovery_codes: CODES } };
    });
    renderWithProviders(<SecurityPage />, { route: "/security", mantineEnv: "test" });
    await userEvent.click(await screen.findByRole("button", { name: "Add a passkey" }));
    const name = screen.getByLabelText(/^Passkey name/);
    await userEvent.clear(name);
    await userEvent.type(name, "YubiKey");
    await userEvent.type(screen.getByLabelText(/^Current password/), "pw");
    await userEvent.click(screen.getByRole("button", { name: "Create the passkey" }));

    expect(await screen.findByRole("list", { name: "Recovery codes" })).toBeInTheDocument();
    expect(server.callsTo("POST", "/api/v1/users/me/passkeys/registration-options")[0]!.body).toEqual({
      current_password: "pw",
    });
    expect(authenticator.create).toHaveLength(1);
    expect(server.callsTo("POST", "/api/v1/users/me/passkeys")[0]!.body).toMatchObject({
      challenge_id: "reg-1",
      name: "YubiKey",
      credential: { id: "new-key", response: { transports: ["usb"] } },
    });
    expect(await screen.findByRole("list", { name: "Your passkeys" })).toHaveTextContent("YubiKey");
  });

  it("lists passkeys with a synced badge, renames and removes them", async () => {
    const synced = {
      id: "7d1f3c52-0000-4000-8000-000000000002",
      name: "Phone",
      created_at: "2026-02-01T10:00:00Z",
      last_used_at: "2026-02-03T08:00:00Z",
      backed_up: true,
      transports: ["internal", "hybrid"],
    };
    const state = serveStatus(mfaStatus({ enabled: true, passkeys: [synced], recovery_codes_left: 10 }));
    server.on("PATCH /api/v1/users/me/passkeys/:id", (call) => {
      const renamed = { ...synced, name: (call.body as { name: string }).name };
      state.current = { ...state.current, passkeys: [renamed] };
      return { body: renamed };
    });
    server.on("DELETE /api/v1/users/me/passkeys/:id", () => {
      state.current = mfaStatus();
      return { status: 204 };
    });
    renderWithProviders(<SecurityPage />, { route: "/security", mantineEnv: "test" });
    const list = await screen.findByRole("list", { name: "Your passkeys" });
    expect(within(list).getByText("Synced")).toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Rename Phone" }));
    const dialog = await screen.findByRole("dialog", { name: "Rename the passkey" });
    const field = within(dialog).getByLabelText(/^Passkey name/);
    await userEvent.clear(field);
    await userEvent.type(field, "Pixel");
    await userEvent.click(within(dialog).getByRole("button", { name: "Save name" }));
    expect(await screen.findByRole("button", { name: "Rename Pixel" })).toBeInTheDocument();
    expect(server.callsTo("PATCH", `/api/v1/users/me/passkeys/${synced.id}`)[0]!.body).toEqual({ name: "Pixel" });

    await userEvent.click(screen.getByRole("button", { name: "Remove Pixel" }));
    const confirm = await screen.findByRole("dialog", { name: "Remove this passkey?" });
    await userEvent.click(within(confirm).getByRole("button", { name: "Remove passkey" }));
    expect(await screen.findByText("No passkeys yet.")).toBeInTheDocument();
  });
});

describe("a role that requires MFA", () => {
  it("is sent to the security page with the reason when a page is refused", async () => {
    serveStatus(mfaStatus({ required: true }));
    server.on("GET /api/v1/users/me/sessions", apiError(403, "MFA_ENROLLMENT_REQUIRED"));
    renderWithProviders(<App />, { route: "/sessions" });
    expect(await screen.findByRole("heading", { name: "Security" })).toBeInTheDocument();
    expect(await screen.findByText("Your role requires two-factor authentication")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Security" })).toHaveAttribute("aria-current", "page");
  });
});
