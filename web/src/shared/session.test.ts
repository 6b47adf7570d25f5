import { describe, expect, it, vi } from "vitest";
import { readCookie, Session, type SessionDeps } from "./session";

type Call = { url: string; method: string; headers: Headers; body: string | null };

/** A fake Gatehouse: answers by path, records what the browser sent. */
function fakeServer(answers: Record<string, (call: Call) => Response | Promise<Response>>) {
  const calls: Call[] = [];
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(new URL(String(input), "http://app"), init);
    const url = new URL(request.url).pathname;
    const call = {
      url,
      method: request.method,
      headers: request.headers,
      body: request.body ? await request.text() : null,
    };
    calls.push(call);
    const answer = answers[`${request.method} ${url}`];
    if (!answer) return new Response(null, { status: 404 });
    return answer(call);
  });
  return { calls, fetch: fetch as unknown as typeof globalThis.fetch };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

const tokenAnswer =
  (token: string, expiresIn = 900) =>
  () =>
    json(200, { access_token: token, token_type: "bearer", expires_in: expiresIn, csrf_token: "c2" });

function makeSession(server: ReturnType<typeof fakeServer>, overrides: Partial<SessionDeps> = {}) {
  let now = 1_000_000;
  const clock = { advance: (ms: number) => (now += ms) };
  const session = new Session({
    fetch: server.fetch,
    cookies: () => "theme=dark; gatehouse_csrf=csrf%3Dvalue",
    now: () => now,
    ...overrides,
  });
  return { session, clock };
}

describe("readCookie", () => {
  it("finds a cookie among others and decodes it", () => {
    expect(readCookie("gatehouse_csrf", "a=1; gatehouse_csrf=x%3Dy; b=2")).toBe("x=y");
    expect(readCookie("gatehouse_csrf", "a=1")).toBeNull();
    expect(readCookie("gatehouse_csrf", "")).toBeNull();
  });
});

describe("Session", () => {
  it("logs in in cookie mode and keeps the access token in memory only", async () => {
    const server = fakeServer({ "POST /api/v1/auth/token": tokenAnswer("t1") });
    const { session } = makeSession(server);
    await session.login({ email: "jane@example.com", password: "pw" });
    expect(session.accessToken).toBe("t1");
    const call = server.calls[0]!;
    expect(call.headers.get("X-Token-Transport")).toBe("cookie");
    expect(JSON.parse(call.body!)).toMatchObject({ username: "jane@example.com", password: "pw" });
  });

  it("refreshes with the CSRF cookie echoed in a header", async () => {
    const server = fakeServer({ "POST /api/v1/auth/refresh": tokenAnswer("t2") });
    const { session } = makeSession(server);
    expect(await session.refresh()).toBe("t2");
    const call = server.calls[0]!;
    expect(call.headers.get("X-CSRF-Token")).toBe("csrf=value");
    expect(call.headers.get("X-Token-Transport")).toBe("cookie");
  });

  it("keeps a refresh going when the page goes away (keepalive)", async () => {
    const fetch = vi.fn(async () => tokenAnswer("t9")());
    const session = new Session({
      fetch: fetch as unknown as typeof globalThis.fetch,
      cookies: () => "gatehouse_csrf=c",
      now: () => 0,
    });
    await session.refresh();
    expect(fetch).toHaveBeenCalledWith("/api/v1/auth/refresh", expect.objectContaining({ keepalive: true }));
  });

  it("sends one refresh for many callers at once (a spent token is never sent twice)", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const server = fakeServer({
      "POST /api/v1/auth/refresh": async () => {
        await gate;
        return tokenAnswer("t3")();
      },
    });
    const { session } = makeSession(server);
    const all = Promise.all([session.refresh(), session.refresh(), session.validToken()]);
    release();
    expect(await all).toEqual(["t3", "t3", "t3"]);
    expect(server.calls.filter((c) => c.url.endsWith("/refresh"))).toHaveLength(1);
  });

  it("holds the cross-tab lock while refreshing", async () => {
    const order: string[] = [];
    const server = fakeServer({
      "POST /api/v1/auth/refresh": () => {
        order.push("refresh");
        return tokenAnswer("t4")();
      },
    });
    const lock = async <T>(task: () => Promise<T>) => {
      order.push("lock");
      const result = await task();
      order.push("unlock");
      return result;
    };
    const { session } = makeSession(server, { lock });
    await session.refresh();
    expect(order).toEqual(["lock", "refresh", "unlock"]);
  });

  it("without the CSRF cookie there is no session and nothing is sent", async () => {
    const server = fakeServer({});
    const { session } = makeSession(server, { cookies: () => "" });
    expect(await session.refresh()).toBeNull();
    expect(server.calls).toHaveLength(0);
  });

  it("signs out when the server says the session is over", async () => {
    const server = fakeServer({
      "POST /api/v1/auth/token": tokenAnswer("t5", 60),
      "POST /api/v1/auth/refresh": () => json(400, { error: { code: "INVALID_GRANT", message: "over", details: {} } }),
    });
    const { session, clock } = makeSession(server);
    const changes = vi.fn();
    session.subscribe(changes);
    await session.login({ email: "a@b.co", password: "pw" });
    clock.advance(61_000);
    expect(await session.validToken()).toBeNull();
    expect(session.signedIn).toBe(false);
    expect(changes).toHaveBeenCalledTimes(2);
  });

  it("refreshes before the token runs out, not on every call", async () => {
    let issued = 0;
    const server = fakeServer({
      "POST /api/v1/auth/refresh": () => tokenAnswer(`r${++issued}`, 60)(),
    });
    const { session, clock } = makeSession(server);
    expect(await session.validToken()).toBe("r1");
    clock.advance(30_000);
    expect(await session.validToken()).toBe("r1");
    clock.advance(25_000); // 5 s left: inside the early window
    expect(await session.validToken()).toBe("r2");
  });

  it("retries a request once with a fresh token after a 401", async () => {
    let issued = 0;
    const server = fakeServer({
      "POST /api/v1/auth/refresh": () => tokenAnswer(`fresh${++issued}`)(),
      "PATCH /api/v1/users/me": (call) =>
        call.headers.get("Authorization") === "Bearer fresh2"
          ? json(200, { ok: true, echoed: JSON.parse(call.body!) })
          : json(401, { error: { code: "UNAUTHORIZED", message: "expired", details: {} } }),
    });
    const { session } = makeSession(server);
    const request = new Request("http://app/api/v1/users/me", {
      method: "PATCH",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: "Jane" }),
    });
    const response = await session.authorizedFetch(request);
    expect(response.status).toBe(200);
    // The retried request carried the same body.
    expect(await response.json()).toEqual({ ok: true, echoed: { name: "Jane" } });
    expect(server.calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      "POST /api/v1/auth/refresh",
      "PATCH /api/v1/users/me",
      "POST /api/v1/auth/refresh",
      "PATCH /api/v1/users/me",
    ]);
  });

  it("does not send a wrong second factor again: its 401 is not an expired token", async () => {
    const server = fakeServer({
      "POST /api/v1/auth/token": tokenAnswer("t1"),
      "POST /api/v1/auth/mfa/step-up": () =>
        json(401, { error: { code: "INVALID_MFA_CODE", message: "", details: { attempts_left: 4 } } }),
    });
    const { session } = makeSession(server);
    await session.login({ email: "a@b.co", password: "pw" });
    const response = await session.authorizedFetch(
      new Request("http://app/api/v1/auth/mfa/step-up", { method: "POST", body: '{"method":"totp","code":"1"}' }),
    );
    expect(response.status).toBe(401);
    expect(server.calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      "POST /api/v1/auth/token",
      "POST /api/v1/auth/mfa/step-up",
    ]);
    expect(session.signedIn).toBe(true);
  });

  it("finishes an MFA login in cookie mode, like the password login", async () => {
    const server = fakeServer({ "POST /api/v1/auth/mfa/verify": tokenAnswer("t-mfa") });
    const { session } = makeSession(server);
    await session.verifyMfa({ mfa_token: "m", method: "totp", code: "123456" });
    expect(session.accessToken).toBe("t-mfa");
    const call = server.calls[0]!;
    expect(call.headers.get("X-Token-Transport")).toBe("cookie");
    expect(JSON.parse(call.body!)).toEqual({ mfa_token: "m", method: "totp", code: "123456" });
  });

  it("gives the 401 back when the session cannot be refreshed", async () => {
    const server = fakeServer({
      "POST /api/v1/auth/token": tokenAnswer("old"),
      "POST /api/v1/auth/refresh": () => json(400, { error: { code: "INVALID_GRANT", message: "", details: {} } }),
      "GET /api/v1/users/me": () => json(401, { error: { code: "UNAUTHORIZED", message: "", details: {} } }),
    });
    const { session } = makeSession(server);
    await session.login({ email: "a@b.co", password: "pw" });
    const response = await session.authorizedFetch(new Request("http://app/api/v1/users/me"));
    expect(response.status).toBe(401);
    expect(session.signedIn).toBe(false);
  });

  it("logs out with the bearer token and forgets it even if the call fails", async () => {
    const server = fakeServer({
      "POST /api/v1/auth/token": tokenAnswer("t6"),
      "POST /api/v1/auth/logout": () => {
        throw new TypeError("network down");
      },
    });
    const { session } = makeSession(server);
    await session.login({ email: "a@b.co", password: "pw" });
    await expect(session.logout(true)).rejects.toThrow(/could not be reached/);
    expect(session.signedIn).toBe(false);
    const call = server.calls.at(-1)!;
    expect(call.headers.get("Authorization")).toBe("Bearer t6");
    expect(JSON.parse(call.body!)).toEqual({ all: true });
  });
});
