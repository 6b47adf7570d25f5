// The typed API client: paths and bodies come from src/api/schema.d.ts, generated from
// Gatehouse's own OpenAPI document (`make api-client`; `make lint` fails on drift).
import createClient from "openapi-fetch";
import type { components, paths } from "../api/schema";
import { ApiError, apiErrorFrom } from "./errors";
import { browserSession, type Session } from "./session";

export type Schemas = components["schemas"];
export type User = Schemas["UserRead"];
export type AdminUser = Schemas["UserAdminRead"];
export type Role = Schemas["Role"];
export type LoginSession = Schemas["SessionRead"];

export type Api = ReturnType<typeof createApi>;

export function createApi(session: Session) {
  return createClient<paths>({
    baseUrl: "",
    fetch: (request: Request) => session.authorizedFetch(request),
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
  const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
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
