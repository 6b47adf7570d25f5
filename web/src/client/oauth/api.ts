// The OpenID provider's endpoints the client app calls (docs/oidc.md): the browser
// session a login hands to /oauth2/authorize, the consent screen, and the apps a person
// has let in. They are typed here by hand until web/openapi.json carries them; once
// `make api-client` has generated them, `oauthApi` becomes the shared `api` itself.
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { Client } from "openapi-fetch";
import { api, unwrap } from "../../shared/api";

export type ConsentClient = { client_id: string; name: string; logo_url: string | null };

/** What GET /api/v1/oauth2/consent answers: who asks, for what, and what is new. */
export type ConsentRequest = {
  client: ConsentClient;
  scopes: string[];
  new_scopes: string[];
  redirect_uri: string;
};

/** Where the browser goes next: the authorize endpoint again, or the application. */
export type Redirect = { redirect_to: string };

export type ConnectedApp = {
  client_id: string;
  name: string;
  logo_url: string | null;
  scopes: string[];
  granted_at: string;
  updated_at: string;
};

type NoParams = { query?: never; header?: never; path?: never; cookie?: never };
type Headers = { [name: string]: unknown };
type Json<T> = { headers: Headers; content: { "application/json": T } };
type Empty = { headers: Headers; content?: never };
type Failure = Json<{ error: Record<string, unknown> }>;
type Operation<Ok, Params = NoParams> = {
  parameters: Params;
  requestBody?: never;
  responses: Ok & { default: Failure };
};
type Send<Body, Ok> = {
  parameters: NoParams;
  requestBody: { content: { "application/json": Body } };
  responses: Ok & { default: Failure };
};

type OAuthPaths = {
  "/api/v1/oauth2/session": { parameters: NoParams; post: Operation<{ 204: Empty }> };
  "/api/v1/oauth2/consent": {
    parameters: NoParams;
    // The authorize request's own parameters, passed on as a raw query string.
    get: Operation<{ 200: Json<ConsentRequest> }>;
    post: Send<{ query: string }, { 200: Json<Redirect> }>;
  };
  "/api/v1/oauth2/consent/deny": { parameters: NoParams; post: Send<{ query: string }, { 200: Json<Redirect> }> };
  "/api/v1/users/me/connected-apps": { parameters: NoParams; get: Operation<{ 200: Json<ConnectedApp[]> }> };
  "/api/v1/users/me/connected-apps/{client_id}": {
    parameters: NoParams;
    delete: Operation<{ 204: Empty }, { query?: never; header?: never; path: { client_id: string }; cookie?: never }>;
  };
};

/** The app's own API client (the bearer token, its refresh, step-up), seen with these paths. */
const oauthApi = api as unknown as Client<OAuthPaths>;

export const oauthKeys = {
  all: ["oauth"] as const,
  consent: (query: string) => [...oauthKeys.all, "consent", query] as const,
  connectedApps: () => [...oauthKeys.all, "connected-apps"] as const,
};

/**
 * Tie this browser's Gatehouse login to the OpenID provider (the `gatehouse_op` cookie,
 * set by the answer): /oauth2/authorize knows who is there from it.
 */
export async function startBrowserSession(): Promise<void> {
  await unwrap(oauthApi.POST("/api/v1/oauth2/session"));
}

/**
 * The authorize request as the page received it (without "?"), sent on as it is: the
 * API checks exactly what /oauth2/authorize will see.
 */
export function useConsentRequest(query: string, enabled = true) {
  return useQuery({
    queryKey: oauthKeys.consent(query),
    queryFn: () => unwrap(oauthApi.GET("/api/v1/oauth2/consent", { querySerializer: () => query })),
    enabled,
    // What was asked does not change while the page is open.
    staleTime: Number.POSITIVE_INFINITY,
  });
}

type After<T> = { onSuccess?: (data: T) => void; onError?: (error: Error) => void };

/** Allow (`allow`) or refuse the request; the answer says where the browser goes next. */
export function useAnswerConsent(after: After<Redirect> = {}) {
  return useMutation({
    mutationFn: ({ query, allow }: { query: string; allow: boolean }) =>
      unwrap(
        allow
          ? oauthApi.POST("/api/v1/oauth2/consent", { body: { query } })
          : oauthApi.POST("/api/v1/oauth2/consent/deny", { body: { query } }),
      ),
    onSuccess: after.onSuccess,
    onError: after.onError,
  });
}

export function useConnectedApps(enabled = true) {
  return useQuery({
    queryKey: oauthKeys.connectedApps(),
    queryFn: () => unwrap(oauthApi.GET("/api/v1/users/me/connected-apps")),
    enabled,
    placeholderData: keepPreviousData,
  });
}

export function useRemoveConnectedApp(after: After<void> = {}) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (clientId: string) =>
      unwrap(
        oauthApi.DELETE("/api/v1/users/me/connected-apps/{client_id}", { params: { path: { client_id: clientId } } }),
      ),
    onSuccess: after.onSuccess,
    onError: after.onError,
    // Removed or not, the list shows what the server now holds.
    onSettled: () => queryClient.invalidateQueries({ queryKey: oauthKeys.connectedApps() }),
  });
}
