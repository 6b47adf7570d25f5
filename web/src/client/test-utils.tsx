// Rendering a piece of the client app in a test: the providers the app has (Mantine,
// React Query, modals, the auth state) around a memory router, and a fake `fetch` that
// answers only what a test needs and remembers what was asked.
import { MantineProvider } from "@mantine/core";
import { ModalsProvider } from "@mantine/modals";
import { Notifications, notifications } from "@mantine/notifications";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, render } from "@testing-library/react";
import type { ReactElement, ReactNode } from "react";
import { MemoryRouter } from "react-router";
import { afterEach, vi } from "vitest";
import { AuthProvider } from "../shared/auth";
import { theme } from "../shared/ui";

type Options = {
  route?: string;
  wrap?: (children: ReactNode) => ReactNode;
  /** Show Mantine's notifications (off by default: their store updates outside act()). */
  withNotifications?: boolean;
};

export function renderWithProviders(
  ui: ReactElement,
  { route = "/", wrap = (c) => c, withNotifications = false }: Options = {},
) {
  const queryClient = new QueryClient({
    defaultOptions: { queries: { retry: false }, mutations: { retry: false } },
  });
  const result = render(
    wrap(
      <MantineProvider theme={theme}>
        <QueryClientProvider client={queryClient}>
          <ModalsProvider>
            {withNotifications && <Notifications />}
            <AuthProvider>
              <MemoryRouter initialEntries={[route]}>{ui}</MemoryRouter>
            </AuthProvider>
          </ModalsProvider>
        </QueryClientProvider>
      </MantineProvider>,
    ),
  );
  return { ...result, queryClient };
}

export type Call = { method: string; path: string; headers: Headers; body: unknown };
type Answer = { status?: number; body?: unknown; headers?: Record<string, string> };
type Handler = (call: Call) => Answer | undefined;

/**
 * Replace fetch: each request goes to `handler`, which answers it (or not: then the
 * test fails on a 599, so an unexpected call cannot pass unnoticed).
 */
export function fakeFetch(handler: Handler): Call[] {
  const calls: Call[] = [];
  vi.stubGlobal("fetch", async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(String(input), init);
    const text = await request.text();
    const call: Call = {
      method: request.method,
      path: new URL(request.url).pathname,
      headers: request.headers,
      body: text ? JSON.parse(text) : undefined,
    };
    calls.push(call);
    const answer = handler(call) ?? { status: 599, body: { error: { code: "UNEXPECTED", message: call.path } } };
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
export function apiError(status: number, code: string, details: Record<string, string[]> = {}): Answer {
  return { status, body: { error: { code, message: code, details, timestamp: "", request_id: "test" } } };
}

afterEach(() => {
  vi.unstubAllGlobals();
  // Mantine keeps notifications in a module-wide store: one test's must not show in the next.
  act(() => notifications.clean());
});
