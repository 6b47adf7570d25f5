import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, expect, it, vi } from "vitest";
import { session } from "./api";
import { AuthProvider, useAuth } from "./auth";

function Who() {
  const { status, user } = useAuth();
  return <p>{status === "signed-in" ? `Hello ${user?.name}` : status}</p>;
}

function renderApp() {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <MantineProvider env="test">
      <QueryClientProvider client={client}>
        <AuthProvider>
          <Who />
        </AuthProvider>
      </QueryClientProvider>
    </MantineProvider>,
  );
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

afterEach(() => {
  vi.unstubAllGlobals();
  session.clear(); // one module-wide session: no token outlives its test
});

it("keeps a person logged in across a reload: the cookie is traded for a token", async () => {
  document.cookie = "gatehouse_csrf=abc; path=/";
  vi.stubGlobal("fetch", async (input: RequestInfo | URL) => {
    const url = input instanceof Request ? input.url : String(input);
    if (url.endsWith("/auth/refresh")) return json(200, { access_token: "t", expires_in: 900, csrf_token: "abc" });
    return json(200, {
      id: "u1",
      email: "jane@example.com",
      name: "Jane",
      role: "user",
      created_at: "",
      updated_at: "",
    });
  });
  renderApp();
  expect(await screen.findByText("Hello Jane")).toBeInTheDocument();
});

it("without a session cookie it is signed out at once, asking nothing", async () => {
  const fetch = vi.fn();
  vi.stubGlobal("fetch", fetch);
  renderApp();
  expect(await screen.findByText("signed-out")).toBeInTheDocument();
  expect(fetch).not.toHaveBeenCalled();
});

it("when Gatehouse cannot answer, says so in words and tries again on request", async () => {
  document.cookie = "gatehouse_csrf=abc; path=/";
  let calls = 0;
  vi.stubGlobal("fetch", async () => {
    calls += 1;
    if (calls === 1) {
      return json(429, { error: { code: "RATE_LIMITED", message: "x", details: {} } }, { "Retry-After": "90" });
    }
    return json(400, { error: { code: "INVALID_GRANT", message: "over", details: {} } });
  });
  renderApp();
  expect(await screen.findByRole("alert")).toHaveTextContent("Too many attempts. Try again in 2 minutes.");
  await userEvent.click(screen.getByRole("button", { name: "Try again" }));
  // The session turned out to be over: the app goes on, signed out.
  expect(await screen.findByText("signed-out")).toBeInTheDocument();
});
