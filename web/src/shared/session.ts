// Tokens in the browser (docs/api.md, "Browser apps"):
// - the access token lives in this module's memory only, never in storage;
// - the refresh token is an HttpOnly cookie the script never sees, scoped to the auth
//   path; refreshing needs the `gatehouse_csrf` cookie's value echoed in a header.
// Refresh tokens rotate and a token presented twice ends the whole session, so every
// refresh is single-flight in a tab and serialised across the origin's tabs (Web
// Locks): the next tab in line sends the cookie its predecessor just rotated.
import { ApiError, apiErrorFrom, NetworkError } from "./errors";

export const AUTH_PATH = "/api/v1/auth";
export const CSRF_COOKIE = "gatehouse_csrf";
const LOCK_NAME = "gatehouse-refresh";
/** Refresh this long before the access token expires, so requests rarely see a 401. */
const EARLY_SECONDS = 10;

export type Credentials = { email: string; password: string };

/** A 401 that is about the proof sent (a wrong code or passkey), not about the access token. */
const WRONG_PROOF = new Set(["INVALID_MFA_CODE", "INVALID_PASSKEY", "MFA_TOKEN_INVALID", "INVALID_CREDENTIALS"]);

type TokenBody = { access_token: string; expires_in: number };

export type SessionDeps = {
  fetch: typeof fetch;
  cookies: () => string;
  now: () => number;
  /** Runs `task` holding an origin-wide lock; absent: no other tab to wait for. */
  lock?: <T>(task: () => Promise<T>) => Promise<T>;
};

export function readCookie(name: string, cookies: string): string | null {
  for (const part of cookies.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

export class Session {
  private token: string | null = null;
  private expiresAt = 0;
  private inflight: Promise<string | null> | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly deps: SessionDeps) {}

  /** The access token, when one is held (it may be about to expire). */
  get accessToken(): string | null {
    return this.token;
  }

  get signedIn(): boolean {
    return this.token !== null;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private set(body: TokenBody | null): void {
    const was = this.token;
    this.token = body?.access_token ?? null;
    this.expiresAt = body ? this.deps.now() + body.expires_in * 1000 : 0;
    if ((was === null) !== (this.token === null)) {
      for (const listener of this.listeners) listener();
    }
  }

  /** Forget the token here without calling the API (the API said it is no good). */
  clear(): void {
    this.set(null);
  }

  /** A token good for a while yet: the held one, or a fresh one from the cookie. */
  async validToken(): Promise<string | null> {
    if (this.token && this.deps.now() < this.expiresAt - EARLY_SECONDS * 1000) return this.token;
    return this.refresh();
  }

  /** Exchange the refresh cookie for a new access token; null when there is no session. */
  refresh(): Promise<string | null> {
    if (!this.inflight) {
      const lock = this.deps.lock ?? ((task) => task());
      this.inflight = lock(() => this.refreshNow()).finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  private async refreshNow(): Promise<string | null> {
    const csrf = readCookie(CSRF_COOKIE, this.deps.cookies());
    if (!csrf) {
      // No cookie, no session: the refresh cookie always comes with it.
      this.set(null);
      return null;
    }
    const response = await this.send(`${AUTH_PATH}/refresh`, {
      method: "POST",
      headers: { "X-Token-Transport": "cookie", "X-CSRF-Token": csrf },
      // A reload or a closed tab must not cancel a refresh in flight: the server has
      // spent the old cookie by then, and only this request's answer carries the new one
      // (without keepalive the browser drops it, and the next refresh ends the session).
      keepalive: true,
    });
    if (response.ok) {
      this.set((await response.json()) as TokenBody);
      return this.token;
    }
    const error = await apiErrorFrom(response);
    if (response.status === 400 || response.status === 401 || response.status === 403) {
      // Spent, revoked, expired or refused: the session is over.
      this.set(null);
      return null;
    }
    throw error;
  }

  async login({ email, password }: Credentials): Promise<void> {
    await this.issue(`${AUTH_PATH}/token`, { grant_type: "password", username: email, password });
  }

  /** Finish a login that asked for a second factor (401 MFA_REQUIRED): the same answer as a login. */
  async verifyMfa(body: Record<string, unknown>): Promise<void> {
    await this.issue(`${AUTH_PATH}/mfa/verify`, body);
  }

  /** Log in with a passkey alone. */
  async passkeyLogin(body: { challenge_id: string; credential: unknown }): Promise<void> {
    await this.issue(`${AUTH_PATH}/passkey/verify`, body);
  }

  /** Every way in answers alike: an access token here, the refresh token in the HttpOnly cookie. */
  private async issue(url: string, body: unknown): Promise<void> {
    const response = await this.send(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Token-Transport": "cookie" },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw await apiErrorFrom(response);
    this.set((await response.json()) as TokenBody);
  }

  /** End this session (or every session of the user) and drop the cookies. */
  async logout(all = false): Promise<void> {
    const token = await this.validToken().catch(() => null);
    try {
      if (token) {
        await this.send(`${AUTH_PATH}/logout`, {
          method: "POST",
          headers: {
            Authorization: `Bearer ${token}`,
            "Content-Type": "application/json",
            "X-Token-Transport": "cookie",
          },
          body: JSON.stringify({ all }),
        });
      }
    } finally {
      this.set(null);
    }
  }

  private async send(url: string, init: RequestInit): Promise<Response> {
    try {
      return await this.deps.fetch(url, { ...init, credentials: "same-origin" });
    } catch {
      throw new NetworkError();
    }
  }

  /**
   * fetch with the bearer token; a 401 gets one refresh and one retry, so an access
   * token that expired under a request is replaced without the person noticing.
   */
  async authorizedFetch(request: Request): Promise<Response> {
    const retry = request.clone();
    const token = await this.validToken();
    const first = await this.sendWith(request, token);
    if (first.status !== 401 || !token) return first;
    // A wrong second factor is not an expired token: sending it again would only spend
    // another of the few attempts the server allows.
    const { code } = await apiErrorFrom(first.clone());
    if (WRONG_PROOF.has(code)) return first;
    const fresh = await this.refresh();
    if (!fresh) return first;
    return this.sendWith(retry, fresh);
  }

  private async sendWith(request: Request, token: string | null): Promise<Response> {
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    try {
      return await this.deps.fetch(request);
    } catch {
      throw new NetworkError();
    }
  }
}

function browserLock<T>(task: () => Promise<T>): Promise<T> {
  return navigator.locks.request(LOCK_NAME, task) as Promise<T>;
}

export function browserSession(): Session {
  return new Session({
    fetch: (...args) => window.fetch(...args),
    cookies: () => document.cookie,
    now: () => Date.now(),
    lock: typeof navigator !== "undefined" && navigator.locks ? browserLock : undefined,
  });
}

export { ApiError };
