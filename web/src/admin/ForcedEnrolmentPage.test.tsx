import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";
import { apiError, mfaStatus, person, server, signIn } from "../shared/test-utils";
import { App } from "./App";
import { renderAdmin } from "./test-utils";

const CODES = Array.from({ length: 10 }, (_, i) => `code${i}-abcde`);
const admin = person("admin", { name: "Ada Admin" });

beforeEach(() => server.reset());

describe("an admin whose role requires MFA", () => {
  it("sets up an authenticator app instead of the page, then the portal goes on", async () => {
    signIn(admin);
    let enrolled = false;
    server.on("GET /api/v1/users", () =>
      enrolled
        ? { body: { data: [admin], meta: { page: 1, page_size: 20, total_count: 1, total_pages: 1 } } }
        : apiError(403, "MFA_ENROLLMENT_REQUIRED"),
    );
    server.on("GET /api/v1/users/me/mfa", () => ({ body: mfaStatus({ required: true, enabled: enrolled }) }));
    server.on("POST /api/v1/users/me/mfa/totp", {
      status: 201,
      body: { secret: "JBSWY3DPEHPK3PXP", otpauth_uri: "otpauth://totp/x", qr_svg: "<svg/>" },
    });
    server.on("POST /api/v1/users/me/mfa/totp/confirm", () => {
      enrolled = true;
      return { body: { recovery_codes: CODES } };
    });
    renderAdmin(<App />, { route: "/users" });

    expect(await screen.findByRole("heading", { name: "Set up two-factor authentication" })).toBeInTheDocument();
    expect(screen.getByText("Your role requires two-factor authentication")).toBeInTheDocument();
    // The page behind it is not shown.
    expect(screen.queryByRole("link", { name: "Users" })).not.toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Set up authenticator app" }));
    await userEvent.type(screen.getByLabelText(/^Current password/), "pw");
    await userEvent.click(screen.getByRole("button", { name: "Continue" }));
    await userEvent.type(await screen.findByLabelText(/^Authentication code/), "123456");
    await userEvent.click(screen.getByRole("button", { name: "Turn on" }));
    const list = await screen.findByRole("list", { name: "Recovery codes" });
    expect(within(list).getAllByRole("listitem")).toHaveLength(10);
    await userEvent.click(screen.getByRole("checkbox", { name: "I saved them" }));
    await userEvent.click(screen.getByRole("button", { name: "Done" }));

    expect(await screen.findByRole("link", { name: "Users" })).toBeInTheDocument();
    expect(await screen.findByText("admin@example.com")).toBeInTheDocument();
    expect(screen.queryByRole("heading", { name: "Set up two-factor authentication" })).not.toBeInTheDocument();
  });

  it("can add a passkey instead, or log out", async () => {
    signIn(admin);
    server.on("GET /api/v1/users", apiError(403, "MFA_ENROLLMENT_REQUIRED"));
    renderAdmin(<App />, { route: "/users" });
    await screen.findByRole("heading", { name: "Set up two-factor authentication" });
    expect(screen.getByRole("button", { name: "Add a passkey" })).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Log out" }));
    expect(await screen.findByRole("form", { name: "Log in" })).toBeInTheDocument();
  });
});
