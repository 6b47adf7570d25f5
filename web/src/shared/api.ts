// The typed API client: paths and bodies come from src/api/schema.d.ts, generated from
// Gatehouse's own OpenAPI document (`make api-client`; `make lint` fails on drift).
import createClient from "openapi-fetch";
import type { components, paths } from "../api/schema";
import { ApiError, apiErrorFrom } from "./errors";
import { askStepUp, enrolmentGate } from "./gates";
import { browserSession, type Session } from "./session";

export type Schemas = components["schemas"];
export type User = Schemas["UserRead"];
export type AdminUser = Schemas["UserAdminRead"];
export type Role = Schemas["Role"];
export type LoginSession = Schemas["SessionRead"];
// The MFA schemas' names, in one place: the rest of the code says only these.
export type MfaStatus = Schemas["MfaStatus"];
export type Passkey = Schemas["PasskeyRead"];
export type TotpEnrolment = Schemas["TotpEnrolment"];
export type MfaVerifyRequest = Schemas["MfaVerifyRequest"];

export type Api = ReturnType<typeof createApi>;

/** The step-up itself and its passkey challenge must never wait for a step-up. */
const STEP_UP_PATHS = ["/api/v1/auth/mfa/step-up", "/api/v1/users/me/passkeys/authentication-options"];

export function createApi(session: Session) {
  return createClient<paths>({
    baseUrl: "",
    fetch: async (request: Request) => {
      const again = request.clone();
      const response = await session.authorizedFetch(request);
      if (response.status !== 403) return response;
      const { code, details } = await apiErrorFrom(response.clone());
      if (code === "MFA_ENROLLMENT_REQUIRED") enrolmentGate.set(true);
      if (code !== "STEP_UP_REQUIRED" || STEP_UP_PATHS.includes(new URL(request.url).pathname)) return response;
      const offered = Array.isArray(details.methods) ? details.methods.map(String) : [];
      const methods = offered.length ? offered : ["totp", "recovery_code"];
      // Proved: the same request once more. Closed: the caller gets the 403 and says so.
      return (await askStepUp(methods)) ? session.authorizedFetch(again) : response;
    },
  });
}

type Result<T> = { data?: T; error?: unknown; response: Response };

/** The data of a 2xx answer; an ApiError (with the envelope's code) for anything else. */
export async function unwrap<T>(pending: Promise<Result<T>>): Promise<T> {
  const { data, error, response } = await pending;
  if (!response.ok) throw await apiErrorFrom(response, error ?? null);
  return data as T;
}

/** Save a JSON answer (a data export) as a file the browser downloads. */
export function downloadJson(data: unknown, filename: string): void {
  downloadText(JSON.stringify(data, null, 2), filename, "application/json");
}

/** Save text as a file the browser downloads. */
export function downloadText(text: string, filename: string, type = "text/plain"): void {
  const blob = new Blob([text], { type });
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export const session = browserSession();
export const api = createApi(session);
export { ApiError };
