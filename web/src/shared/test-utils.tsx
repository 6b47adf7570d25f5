// The one way both apps' unit tests fake Gatehouse: `fetch` is replaced, and everything
// above it runs for real (the session and its refresh, the typed API client, the auth
// state, React Query). A test answers only what it needs and reads back what was asked.
//
// Two ways to answer, on the same fake fetch:
// - fakeFetch(handler): one function sees every request (the client app's tests);
// - server.on("GET /api/v1/users/:id", answer): routes, later ones winning (the admin
//   portal's tests), with signIn(person) answering the session's own requests.
import { MantineProvider } from "@mantine/core";
import { ModalsProvider } from "@mantine/modals";
import { Notifications, notifications } from "@mantine/notifications";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, render } from "@testing-library/react";
import type { ReactElement, ReactNode } from "react";
import { MemoryRouter, Route, Routes } from "react-router";
import { vi } from "vitest";
import { type AdminUser, type MfaStatus, type Role, session, type User } from "./api";
import { AuthProvider, useAuth } from "./auth";
import { enrolmentGate } from "./gates";
import { AUTH_PATH, CSRF_COOKIE } from "./session";
import { theme } from "./ui";

// Mantine's option lists scroll the chosen option into view; jsdom has no layout.
if (typeof Element !== "undefined" && !Element.prototype.scrollIntoView) Element.prototype.scrollIntoView = () => {};

export type Call = { method: string; path: string; query: URLSearchParams; headers: Headers; body: unknown };
export type Answer = { status?: number; body?: unknown; headers?: Record<string, string> };
type Handler = (call: Call) => Answer | undefined | Promise<Answer | undefined>;

/**
 * Replace fetch: each request goes to `handler`, which answers it (or not: then the
 * test fails on a 599, so an unexpected call cannot pass unnoticed).
 */
export function fakeFetch(handler: Handler): Call[] {
  const calls: Call[] = [];
  vi.stubGlobal("fetch", async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(String(input), init);
    const url = new URL(request.url);
    const text = await request.text();
    const call: Call = {
      method: request.method,
      path: url.pathname,
      query: url.searchParams,
      headers: request.headers,
      body: text ? JSON.parse(text) : undefined,
    };
    calls.push(call);
    const answer = (await handler(call)) ?? {
      status: 599,
      body: { error: { code: "UNEXPECTED", message: call.path } },
    };
    const status = answer.status ?? 200;
    const body = status === 204 || answer.body === undefined ? null : JSON.stringify(answer.body);
    return new Response(body, {
      status,
      headers: { "Content-Type": "application/json", ...answer.headers },
    });
  });
  return calls;
}

/** The API's error envelope. */
export function apiError(
  status: number,
  code: string,
  details: Record<string, unknown> = {},
  message: string = code,
): Answer {
  return { status, body: { error: { code, message, details, timestamp: "2026-01-15T10:30:00Z", request_id: "test" } } };
}

type RouteHandler = (call: Call, params: Record<string, string>) => Answer | Promise<Answer>;
type RouteEntry = { method: string; pattern: RegExp; names: string[]; handler: RouteHandler };

/** What the session itself asks on every page load: not the screen's doing. */
const SIGN_IN_CALLS = [`POST ${AUTH_PATH}/refresh`, "GET /api/v1/users/me"];

function compile(route: string, answer: RouteHandler | Answer): RouteEntry {
  const [method, path] = route.split(" ") as [string, string];
  const names: string[] = [];
  const pattern = new RegExp(
    `^${path.replace(/:([a-z_]+)/g, (_, name: string) => {
      names.push(name);
      return "([^/]+)";
    })}$`,
  );
  const handler = typeof answer === "function" ? answer : () => answer;
  return { method, pattern, names, handler };
}

/**
 * A fake Gatehouse behind the fake fetch: routes like "GET /api/v1/users/:user_id"
 * answer; anything else gets the API's 404. `reset()` (in a beforeEach) installs it.
 */
export const server = {
  routes: [] as RouteEntry[],
  /** signIn's routes, tried first: "GET /api/v1/users/:id" must not answer /users/me. */
  sessionRoutes: [] as RouteEntry[],
  calls: [] as Call[],
  reset() {
    this.routes = [];
    this.sessionRoutes = [];
    this.calls = fakeFetch((call) => this.answer(call));
  },
  on(route: string, answer: RouteHandler | Answer) {
    // Later routes win, so a test can override a default answer.
    this.routes.unshift(compile(route, answer));
  },
  async answer(call: Call): Promise<Answer> {
    for (const route of [...this.sessionRoutes, ...this.routes]) {
      const match = route.method === call.method ? route.pattern.exec(call.path) : null;
      if (!match) continue;
      const params = Object.fromEntries(route.names.map((name, i) => [name, match[i + 1] ?? ""]));
      return route.handler(call, params);
    }
    return apiError(404, "NOT_FOUND", {}, "No such path");
  },
  callsTo(method: string, path: string) {
    return this.calls.filter((call) => call.method === method && call.path === path);
  },
  /** The calls a screen made: all of them but the session's own refresh and /users/me. */
  screenCalls() {
    return this.calls.filter((call) => !SIGN_IN_CALLS.includes(`${call.method} ${call.path}`));
  },
};

let signedIn: User | null = null;

/**
 * Log `person` in the way a reload does: a refresh cookie (its CSRF twin, which the
 * session reads) that the fake server trades for a token, and /users/me answering them.
 * Logging out ends it like the API does. Call after `server.reset()`.
 */
export function signIn(person: User) {
  signedIn = person;
  act(() => session.clear());
  document.cookie = `${CSRF_COOKIE}=test-csrf; path=/`;
  server.sessionRoutes = [
    compile(`POST ${AUTH_PATH}/refresh`, () =>
      signedIn
        ? { body: { access_token: "test-token", expires_in: 900, token_type: "Bearer" } }
        : apiError(401, "INVALID_GRANT"),
    ),
    compile("GET /api/v1/users/me", () => (signedIn ? { body: signedIn } : apiError(401, "UNAUTHORIZED"))),
    compile(`POST ${AUTH_PATH}/logout`, () => {
      signedIn = null;
      document.cookie = `${CSRF_COOKIE}=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/`;
      return { status: 204 };
    }),
  ];
}

/** An account as the admin endpoints return it. */
export function person(role: Role, overrides: Partial<AdminUser> = {}): AdminUser {
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

/** Renders its screen once the auth state knows who is there, as both apps do. */
function AuthSettled({ children }: { children: ReactNode }) {
  return useAuth().status === "loading" ? null : children;
}

/** A user's second factors as GET /users/me/mfa (and /users/{id}/mfa) answer them. */
export function mfaStatus(overrides: Partial<MfaStatus> = {}): MfaStatus {
  return {
    enabled: false,
    required: false,
    totp: { enabled: false, confirmed_at: null },
    passkeys: [],
    recovery_codes_left: 0,
    ...overrides,
  };
}

const bytes = (text: string) => new TextEncoder().encode(text).buffer as ArrayBuffer;

/**
 * A browser with WebAuthn and an authenticator that says yes: `navigator.credentials`
 * answers with a credential the real @simplewebauthn/browser turns into JSON. The
 * options the page passed are kept, so a test can check the challenge went through.
 */
export function fakeAuthenticator({ credentialId = "cred-1", refuse = false } = {}) {
  const seen = { get: [] as CredentialRequestOptions[], create: [] as CredentialCreationOptions[] };
  const refusal = () =>
    Promise.reject(new DOMException("The operation either timed out or was not allowed.", "NotAllowedError"));
  vi.stubGlobal("PublicKeyCredential", class PublicKeyCredential {});
  Object.defineProperty(navigator, "credentials", {
    configurable: true,
    value: {
      get: (options: CredentialRequestOptions) => {
        seen.get.push(options);
        if (refuse) return refusal();
        return Promise.resolve({
          id: credentialId,
          rawId: bytes(credentialId),
          type: "public-key",
          authenticatorAttachment: "platform",
          getClientExtensionResults: () => ({}),
          response: {
            authenticatorData: bytes("authenticator-data"),
            clientDataJSON: bytes('{"type":"webauthn.get"}'),
            signature: bytes("signature"),
            userHandle: bytes("user-handle"),
          },
        });
      },
      create: (options: CredentialCreationOptions) => {
        seen.create.push(options);
        if (refuse) return refusal();
        return Promise.resolve({
          id: credentialId,
          rawId: bytes(credentialId),
          type: "public-key",
          authenticatorAttachment: "cross-platform",
          getClientExtensionResults: () => ({}),
          response: {
            attestationObject: bytes("attestation"),
            clientDataJSON: bytes('{"type":"webauthn.create"}'),
            getTransports: () => ["usb"],
          },
        });
      },
    },
  });
  return seen;
}

/** WebAuthn options as the API hands them out (base64url challenge and ids). */
export const requestOptions = {
  challenge: "Y2hhbGxlbmdl",
  rpId: "localhost",
  allowCredentials: [],
  userVerification: "preferred",
};
export const creationOptions = {
  challenge: "Y2hhbGxlbmdl",
  rp: { id: "localhost", name: "Gatehouse" },
  user: { id: "dXNlcg", name: "jane@example.com", displayName: "Jane" },
  pubKeyCredParams: [{ type: "public-key", alg: -7 }],
  excludeCredentials: [],
  authenticatorSelection: { residentKey: "required", userVerification: "preferred" },
};

type Options = {
  route?: string;
  /** The route pattern the screen sits at, when it reads URL params; other addresses show "Elsewhere". */
  path?: string;
  wrap?: (children: ReactNode) => ReactNode;
  /** Show Mantine's notifications (off by default: their store updates outside act()). */
  withNotifications?: boolean;
  /** Mantine's test mode: no transitions, no portals. */
  mantineEnv?: "default" | "test";
  /** Wait for the auth state before showing the screen; by default when someone signed in. */
  settled?: boolean;
};

/**
 * Render a piece of an app in the providers the app has (Mantine, React Query, modals,
 * the auth state) around a memory router at `route`.
 */
export function renderWithProviders(
  ui: ReactElement,
  {
    route = "/",
    path,
    wrap = (c) => c,
    withNotifications = false,
    mantineEnv = "default",
    settled = signedIn !== null,
  }: Options = {},
) {
  const queryClient = new QueryClient({
    defaultOptions: { queries: { retry: false }, mutations: { retry: false } },
  });
  const content = path ? (
    <Routes>
      <Route path={path} element={ui} />
      <Route path="*" element={<p>Elsewhere</p>} />
    </Routes>
  ) : (
    ui
  );
  const result = render(
    wrap(
      <MantineProvider theme={theme} env={mantineEnv}>
        <QueryClientProvider client={queryClient}>
          <ModalsProvider>
            {withNotifications && <Notifications />}
            <AuthProvider>
              <MemoryRouter initialEntries={[route]}>
                {settled ? <AuthSettled>{content}</AuthSettled> : content}
              </MemoryRouter>
            </AuthProvider>
          </ModalsProvider>
        </QueryClientProvider>
      </MantineProvider>,
    ),
  );
  return { ...result, queryClient };
}

/**
 * What one test may leave in module-wide state, undone (src/test-setup.ts calls it after
 * every test: test files share these modules, so a hook registered here would run for
 * the first file that imported it only).
 */
export function resetSharedState() {
  vi.unstubAllGlobals();
  // jsdom's navigator has no credentials of its own: only fakeAuthenticator's goes.
  Reflect.deleteProperty(navigator, "credentials");
  act(() => enrolmentGate.set(false));
  signedIn = null;
  // One module-wide session, as in the browser: no token may outlive its test.
  act(() => session.clear());
  // Mantine keeps notifications in a module-wide store: one test's must not show in the next.
  act(() => notifications.clean());
}
