// The API's error envelope (docs/api.md, Errors) turned into words a person understands.
import type { components } from "../api/schema";

export type ErrorBody = components["schemas"]["ErrorBody"];

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;
  readonly requestId: string | null;
  /** Seconds to wait, from the Retry-After header of a 429 or 503. */
  readonly retryAfter: number | null;

  constructor(status: number, body: Partial<ErrorBody> | null, retryAfter: number | null = null) {
    super(body?.message ?? `The server answered ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = body?.code ?? (status >= 500 ? "INTERNAL_ERROR" : "UNKNOWN");
    this.details = body?.details ?? {};
    this.requestId = body?.request_id ?? null;
    this.retryAfter = retryAfter;
  }
}

/** Thrown when the browser could not reach Gatehouse at all. */
export class NetworkError extends Error {
  constructor() {
    super("Gatehouse could not be reached. Check your connection and try again.");
    this.name = "NetworkError";
  }
}

export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

/** Build an ApiError from a failed response, whatever its body holds. */
export async function apiErrorFrom(response: Response, body?: unknown): Promise<ApiError> {
  let envelope: Partial<ErrorBody> | null = null;
  const parsed = body === undefined ? await response.json().catch(() => null) : body;
  if (parsed && typeof parsed === "object" && "error" in parsed) {
    envelope = (parsed as { error: Partial<ErrorBody> }).error;
  }
  return new ApiError(response.status, envelope, parseRetryAfter(response.headers.get("Retry-After")));
}

/** "30 seconds", "1 minute", "3 minutes": a wait rounded up to what a person reads. */
export function describeWait(seconds: number): string {
  if (seconds < 60) {
    const s = Math.max(1, Math.ceil(seconds));
    return s === 1 ? "1 second" : `${s} seconds`;
  }
  const minutes = Math.ceil(seconds / 60);
  return minutes === 1 ? "1 minute" : `${minutes} minutes`;
}

const MESSAGES: Record<string, string> = {
  INVALID_CREDENTIALS: "That email and password do not match an account.",
  INVALID_CURRENT_PASSWORD: "Your current password is not right.",
  REAUTHENTICATION_REQUIRED: "Enter your current password to make this change.",
  INVALID_GRANT: "Your session has ended. Please log in again.",
  UNAUTHORIZED: "Your session has ended. Please log in again.",
  CSRF_FAILED: "Your session could not be confirmed. Please log in again.",
  FORBIDDEN: "Your account is not allowed to do this.",
  REGISTRATION_DISABLED: "Sign-up is closed on this service. Ask an administrator for an account.",
  USER_NOT_FOUND: "That user no longer exists.",
  SESSION_NOT_FOUND: "That session has already ended.",
  WEBHOOK_NOT_FOUND: "That webhook no longer exists.",
  CLIENT_NOT_FOUND: "That application no longer exists, or has nothing left to remove.",
  CLIENT_IS_PUBLIC: "A public client has no secret to rotate.",
  OAUTH_REQUEST_INVALID: "The application's sign-in request is not valid. Go back to it and try again.",
  NOT_FOUND: "That could not be found.",
  VERSION_CONFLICT: "Someone else changed this in the meantime. Reload and try again.",
  LAST_ADMIN: "This is the last admin: make another user an admin first, so the service keeps one.",
  INVALID_TOKEN: "This link is not valid any more. It may have been used already or have expired; ask for a new one.",
  USER_ERASED: "This account has been erased for good.",
  RESTORE_WINDOW_CLOSED: "This account can no longer be restored.",
  USER_NOT_DELETED: "This account is not deleted, so there is nothing to restore.",
  WEBHOOK_DISABLED: "This webhook is disabled. Enable it first.",
  INTERNAL_ERROR: "Something went wrong on our side. Please try again in a moment.",
  MFA_REQUIRED: "Enter the code from your authenticator app to finish logging in.",
  MFA_TOKEN_INVALID: "Your login was not finished in time, or had too many wrong codes. Log in again.",
  INVALID_PASSKEY: "That passkey was not accepted. Try again, or use another way in.",
  MFA_ALREADY_ENABLED: "An authenticator app is already set up. Remove it first to set up another.",
  NO_PENDING_TOTP: "That setup is no longer waiting for a code. Start it again.",
  PASSKEY_NOT_FOUND: "That passkey no longer exists.",
  STEP_UP_REQUIRED: "This change needs your second factor first. Nothing was changed.",
  MFA_ENROLLMENT_REQUIRED: "Your role requires two-factor authentication. Set it up first.",
};

/** What the browser says when a passkey prompt ends without a passkey (DOMException names). */
const PASSKEY_PROMPT: Record<string, string> = {
  NotAllowedError: "The passkey prompt was closed or timed out. Nothing was sent.",
  AbortError: "The passkey prompt was closed or timed out. Nothing was sent.",
  InvalidStateError: "This device already holds a passkey for your account.",
  SecurityError: "This browser refused the passkey for this address.",
  NotSupportedError: "This device cannot make or use a passkey here.",
};

/** "That code is not right. 2 attempts left." */
function wrongCode(error: ApiError): string {
  const left = error.details.attempts_left;
  const base = "That code is not right.";
  if (typeof left !== "number") return base;
  if (left <= 0) return `${base} No attempts left: log in again.`;
  return `${base} ${left === 1 ? "1 attempt" : `${left} attempts`} left.`;
}

/** One sentence for a person, for any error a request can end with. */
export function describeError(error: unknown): string {
  if (error instanceof NetworkError) return error.message;
  if (!(error instanceof ApiError)) {
    // Not every DOMException is an Error (jsdom's, some older browsers'): read its name alone.
    const name = typeof error === "object" && error !== null && "name" in error ? String(error.name) : "";
    const prompt = Object.hasOwn(PASSKEY_PROMPT, name) ? PASSKEY_PROMPT[name] : undefined;
    if (prompt) return prompt;
    if (error instanceof Error && /WebAuthn is not supported/.test(error.message)) {
      return "This browser cannot use passkeys.";
    }
    return "Something went wrong. Please try again.";
  }
  if (error.code === "INVALID_MFA_CODE") return wrongCode(error);
  if (error.code === "RATE_LIMITED" || error.status === 429) {
    const wait = error.retryAfter ?? 60;
    return `Too many attempts. Try again in ${describeWait(wait)}.`;
  }
  if (error.code === "SERVICE_UNAVAILABLE" || error.status === 503) {
    const wait = error.retryAfter;
    return wait
      ? `The service is busy right now. Try again in ${describeWait(wait)}.`
      : "The service is busy right now. Please try again shortly.";
  }
  if (error.code === "VALIDATION_ERROR" || error.code === "CONFLICT") {
    const fields = fieldErrors(error);
    const first = Object.values(fields)[0];
    if (first) return first;
    return error.message || "Some of what you entered is not valid.";
  }
  return MESSAGES[error.code] ?? error.message ?? "Something went wrong. Please try again.";
}

/**
 * Messages per form field, from a 400's `details` ({"field.path": ["message"]}).
 * The last segment names the field (`body.email` → `email`).
 */
export function fieldErrors(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError)) return {};
  const out: Record<string, string> = {};
  for (const [path, messages] of Object.entries(error.details)) {
    const field = path.split(".").pop() ?? path;
    const text = Array.isArray(messages) ? messages.map(String).join(" ") : String(messages);
    if (text) out[field] = humanize(text);
  }
  return out;
}

function humanize(message: string): string {
  if (message.startsWith("value is not a valid email address")) return "Enter a valid email address.";
  const text = message.replace(/^Value error, /, "");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
