// Rendering portal screens in Vitest: Mantine (in its test mode: no transitions, no
// portals), a fresh QueryClient, the modals, and a MemoryRouter; plus a fake Gatehouse
// behind the typed API client and a fake signed-in person for useAuth.
//
// A test file swaps the real modules for these (the factories import this file lazily):
//   vi.mock("../shared/api", async (original) => ({
//     ...(await original<typeof import("../shared/api")>()), api: (await import("./test-utils")).fakeApi() }));
//   vi.mock("../shared/auth", async () => (await import("./test-utils")).fakeAuthModule());
// This file imports nothing from src/shared, so those mocks never import themselves.
import { MantineProvider } from "@mantine/core";
import { ModalsProvider } from "@mantine/modals";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import createClient from "openapi-fetch";
import type { ReactElement } from "react";
import { MemoryRouter, Route, Routes } from "react-router";
import type { components, paths } from "../api/schema";

type Schemas = components["schemas"];

// Mantine's option lists scroll the chosen option into view; jsdom has no layout.
if (typeof Element !== "undefined" && !Element.prototype.scrollIntoView) Element.prototype.scrollIntoView = () => {};
export type Call = { method: string; path: string; query: URLSearchParams; headers: Headers; body: unknown };
type Answer = { status?: number; body?: unknown; headers?: Record<string, string> };
type Handler = (call: Call, params: Record<string, string>) => Answer | Promise<Answer>;

/** A fake Gatehouse: routes like "GET /api/v1/users/:user_id" answer; every call is recorded. */
export const server = {
  routes: [] as { method: string; pattern: RegExp; names: string[]; handler: Handler }[],
  calls: [] as Call[],
  on(route: string, handler: Handler | Answer) {
    const [method, path] = route.split(" ") as [string, string];
    const names: string[] = [];
    const pattern = new RegExp(
      `^${path.replace(/:([a-z_]+)/g, (_, name: string) => {
        names.push(name);
        return "([^/]+)";
      })}$`,
    );
    const handle = typeof handler === "function" ? handler : () => handler;
    // Later routes win, so a test can override a default answer.
    this.routes.unshift({ method, pattern, names, handler: handle });
  },
  reset() {
    this.routes = [];
    this.calls = [];
  },
  callsTo(method: string, path: string) {
    return this.calls.filter((call) => call.method === method && call.path === path);
  },
};

async function answer(request: Request): Promise<Response> {
  const url = new URL(request.url);
  const text = request.body ? await request.text() : "";
  const call: Call = {
    method: request.method,
    path: url.pathname,
    query: url.searchParams,
    headers: request.headers,
    body: text ? JSON.parse(text) : undefined,
  };
  server.calls.push(call);
  for (const route of server.routes) {
    const match = route.method === call.method ? route.pattern.exec(call.path) : null;
    if (!match) continue;
    const params = Object.fromEntries(route.names.map((name, i) => [name, match[i + 1] ?? ""]));
    const { status = 200, body, headers = {} } = await route.handler(call, params);
    return new Response(body === undefined ? null : JSON.stringify(body), {
      status,
      headers: { "Content-Type": "application/json", ...headers },
    });
  }
  return new Response(JSON.stringify(apiError("NOT_FOUND", "No such path")), { status: 404 });
}

/** The typed client the app uses, talking to `server` (absolute URLs: jsdom's fetch needs them). */
export function fakeApi() {
  return createClient<paths>({ baseUrl: "http://gatehouse.test", fetch: answer });
}

export function apiError(code: string, message = code, details: Record<string, unknown> = {}) {
  return { error: { code, message, details, timestamp: "2026-01-15T10:30:00Z", request_id: "req-1" } };
}

type Person = Schemas["UserRead"];

/** Who useAuth says is logged in. */
export const auth = { user: null as Person | null };

export function fakeAuthModule() {
  return {
    ME_KEY: ["me"],
    useAuth: () => ({
      status: auth.user ? "signed-in" : "signed-out",
      user: auth.user,
      login: async () => auth.user,
      logout: async () => {
        auth.user = null;
      },
    }),
  };
}

export function person(
  role: Person["role"],
  overrides: Partial<Schemas["UserAdminRead"]> = {},
): Schemas["UserAdminRead"] {
  const id = overrides.id ?? `00000000-0000-4000-8000-${String(Math.floor(Math.random() * 1e12)).padStart(12, "0")}`;
  return {
    id,
    email: `${role}@example.com`,
    name: `A ${role}`,
    role,
    created_at: "2026-01-15T10:30:00Z",
    updated_at: "2026-01-15T10:30:00Z",
    last_login_at: null,
    deleted_at: null,
    ...overrides,
  };
}

type Options = { route?: string; path?: string };

/** Render a screen at `route` (matched against `path` when the screen reads URL params). */
export function renderAdmin(ui: ReactElement, { route = "/", path }: Options = {}) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  return render(
    <MantineProvider env="test">
      <QueryClientProvider client={client}>
        <ModalsProvider>
          <MemoryRouter initialEntries={[route]}>
            {path ? (
              <Routes>
                <Route path={path} element={ui} />
                <Route path="*" element={<p>Elsewhere</p>} />
              </Routes>
            ) : (
              ui
            )}
          </MemoryRouter>
        </ModalsProvider>
      </QueryClientProvider>
    </MantineProvider>,
  );
}
