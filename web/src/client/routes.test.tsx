import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { StrictMode } from "react";
import { fakeFetch, renderWithProviders } from "../shared/test-utils";
import { App } from "./App";

it("sends a signed-out visitor of a private page to the login", async () => {
  const calls = fakeFetch(() => undefined);
  renderWithProviders(<App />, { route: "/sessions" });
  expect(await screen.findByRole("heading", { name: "Log in" })).toBeInTheDocument();
  expect(screen.getByRole("link", { name: "Forgot your password?" })).toHaveAttribute("href", "/forgot-password");
  // No refresh cookie: not even a refresh is tried.
  expect(calls).toHaveLength(0);
});

it("answers an unknown address with a page of its own", async () => {
  fakeFetch(() => undefined);
  renderWithProviders(<App />, { route: "/no/such/page" });
  expect(await screen.findByRole("heading", { name: "Page not found" })).toBeInTheDocument();
  expect(screen.getByRole("link", { name: "Go home" })).toHaveAttribute("href", "/");
});

it("confirms an email only when asked, never on arrival (mail scanners open links)", async () => {
  const calls = fakeFetch((call) =>
    call.path === "/api/v1/auth/verify-email"
      ? { body: { id: "u1", email: "jane@example.com", name: "Jane", role: "user", email_verified_at: "" } }
      : undefined,
  );
  renderWithProviders(<App />, {
    route: "/verify-email?token=abc",
    wrap: (children) => <StrictMode>{children}</StrictMode>,
  });
  const confirm = await screen.findByRole("button", { name: "Confirm my email" });
  expect(calls).toHaveLength(0);
  await userEvent.click(confirm);
  expect(await screen.findByText(/jane@example\.com is confirmed/)).toBeInTheDocument();
  expect(calls).toEqual([expect.objectContaining({ method: "POST", body: { token: "abc" } })]);
});

it("puts an old address back only when asked, then sends the person to a new password", async () => {
  const calls = fakeFetch((call) =>
    call.path === "/api/v1/auth/email-change/undo" ? { status: 204, body: null } : undefined,
  );
  renderWithProviders(<App />, { route: "/undo-email-change?token=undo-me" });
  const undo = await screen.findByRole("button", { name: "Put my address back" });
  expect(calls).toHaveLength(0);
  await userEvent.click(undo);
  expect(await screen.findByText("Your address is back")).toBeInTheDocument();
  expect(screen.getByRole("link", { name: "Choose a new password" })).toHaveAttribute("href", "/forgot-password");
  expect(calls).toEqual([expect.objectContaining({ method: "POST", body: { token: "undo-me" } })]);
});

it("says when an email link is no longer valid, and offers a new one", async () => {
  const calls = fakeFetch((call) =>
    call.path === "/api/v1/auth/verify-email"
      ? { status: 400, body: { error: { code: "INVALID_TOKEN", message: "x", details: {} } } }
      : call.path === "/api/v1/auth/verify-email/request"
        ? { status: 202, body: { message: "ok" } }
        : undefined,
  );
  renderWithProviders(<App />, { route: "/verify-email?token=spent" });
  await userEvent.click(await screen.findByRole("button", { name: "Confirm my email" }));
  expect(await screen.findByRole("alert")).toHaveTextContent("This link is not valid any more");
  await userEvent.type(screen.getByLabelText(/^Email/), "jane@example.com");
  await userEvent.click(screen.getByRole("button", { name: "Send a new link" }));
  expect(await screen.findByText(/we sent it a new link/)).toBeInTheDocument();
  expect(calls.at(-1)).toMatchObject({
    path: "/api/v1/auth/verify-email/request",
    body: { email: "jane@example.com" },
  });
});

it("never tells whether an address has an account", async () => {
  const calls = fakeFetch((call) =>
    call.path === "/api/v1/auth/password-reset/request" ? { status: 202, body: { message: "ok" } } : undefined,
  );
  renderWithProviders(<App />, { route: "/forgot-password" });
  await userEvent.type(await screen.findByLabelText(/^Email/), "nobody@example.com");
  await userEvent.click(screen.getByRole("button", { name: "Send the link" }));
  expect(await screen.findByText(/If an account exists for that email, we sent a link/)).toBeInTheDocument();
  await waitFor(() => expect(calls[0]?.body).toEqual({ email: "nobody@example.com" }));
});
