import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { LoginSession } from "../shared/api";
import { fakeFetch, renderWithProviders } from "../shared/test-utils";
import { orderSessions, SessionsPage } from "./pages/SessionsPage";

const here: LoginSession = {
  id: "s-here",
  created_at: "2026-11-25T09:00:00Z",
  last_used_at: "2026-11-25T09:00:00Z",
  expires_at: "2026-12-09T09:00:00Z",
  user_agent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36",
  ip: "127.0.0.1",
  current: true,
};
const phone: LoginSession = {
  ...here,
  id: "s-phone",
  last_used_at: "2026-11-25T11:00:00Z",
  user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Version/18.0 Mobile Safari/604.1",
  ip: "203.0.113.7",
  current: false,
};

it("lists this device first, then the most recently used", () => {
  const old = { ...phone, id: "old", last_used_at: "2026-11-20T00:00:00Z" };
  expect(orderSessions([old, phone, here]).map((s) => s.id)).toEqual(["s-here", "s-phone", "old"]);
});

it("ends another session only after confirmation", async () => {
  let sessions = [phone, here];
  const calls = fakeFetch((call) => {
    if (call.method === "GET" && call.path === "/api/v1/users/me/sessions") return { body: sessions };
    if (call.method === "DELETE" && call.path === "/api/v1/users/me/sessions/s-phone") {
      sessions = [here];
      return { status: 204 };
    }
    return undefined;
  });
  renderWithProviders(<SessionsPage />, { route: "/sessions" });

  expect(await screen.findByText("This device")).toBeInTheDocument();
  expect(screen.getByText("Safari on iOS")).toBeInTheDocument();
  expect(screen.getByText("IP address 203.0.113.7")).toBeInTheDocument();

  await userEvent.click(screen.getByRole("button", { name: /^End the session on Safari on iOS/ }));
  const dialog = await screen.findByRole("dialog");
  expect(calls.some((c) => c.method === "DELETE")).toBe(false);
  await userEvent.click(within(dialog).getByRole("button", { name: "End session" }));

  await waitFor(() => expect(screen.queryByText("Safari on iOS")).not.toBeInTheDocument());
  expect(calls.filter((c) => c.method === "DELETE").map((c) => c.path)).toEqual(["/api/v1/users/me/sessions/s-phone"]);
  expect(screen.getByText("1 active session")).toBeInTheDocument();
});

it("cannot end other sessions when there are none", async () => {
  fakeFetch((call) => (call.path === "/api/v1/users/me/sessions" ? { body: [here] } : undefined));
  renderWithProviders(<SessionsPage />, { route: "/sessions" });
  expect(await screen.findByRole("button", { name: "End all other sessions" })).toBeDisabled();
});
