// The OpenID provider's endpoints the client app calls (docs/oidc.md): the browser
// session a login hands to /oauth2/authorize, the consent screen, and the apps a person
// has let in.
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Schemas, unwrap } from "../../shared/api";

/** What GET /api/v1/oauth2/consent answers: who asks, for what, and what is new. */
export type ConsentRequest = Schemas["ConsentRead"];
/** Where the browser goes next: the authorize endpoint again, or the application. */
export type Redirect = Schemas["RedirectTo"];
export type ConnectedApp = Schemas["ConnectedAppRead"];

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
  await unwrap(api.POST("/api/v1/oauth2/session"));
}

/**
 * The authorize request as the page received it (without "?"), sent on as it is: the
 * API checks exactly what /oauth2/authorize will see.
 */
export function useConsentRequest(query: string, enabled = true) {
  return useQuery({
    queryKey: oauthKeys.consent(query),
    queryFn: () => unwrap(api.GET("/api/v1/oauth2/consent", { querySerializer: () => query })),
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
          ? api.POST("/api/v1/oauth2/consent", { body: { query } })
          : api.POST("/api/v1/oauth2/consent/deny", { body: { query } }),
      ),
    onSuccess: after.onSuccess,
    onError: after.onError,
  });
}

export function useConnectedApps(enabled = true) {
  return useQuery({
    queryKey: oauthKeys.connectedApps(),
    queryFn: () => unwrap(api.GET("/api/v1/users/me/connected-apps")),
    enabled,
    placeholderData: keepPreviousData,
  });
}

export function useRemoveConnectedApp(after: After<void> = {}) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (clientId: string) =>
      unwrap(api.DELETE("/api/v1/users/me/connected-apps/{client_id}", { params: { path: { client_id: clientId } } })),
    onSuccess: after.onSuccess,
    onError: after.onError,
    // Removed or not, the list shows what the server now holds.
    onSettled: () => queryClient.invalidateQueries({ queryKey: oauthKeys.connectedApps() }),
  });
}
