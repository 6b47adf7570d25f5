// The signed-in person's own account (/users/me and its sessions): the query keys and
// the hooks both apps use, so every read and every invalidation names the same keys.
// The profile comes with its version (the ETag), so a save cannot silently overwrite a
// change made meanwhile in another tab or by an admin (docs/api.md, "ETag and If-Match").
import { type QueryClient, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type LoginSession, type Schemas, type User, unwrap } from "./api";
import { ifMatch, unwrapVersioned } from "./versioned";

export const meKeys = {
  /** Everything about the signed-in person: invalidating it reads all of it again. */
  all: ["me"] as const,
  /** Who is signed in, for the auth state and the apps' headers. */
  user: () => [...meKeys.all, "user"] as const,
  /** The profile with its ETag, for the profile form. */
  versioned: () => [...meKeys.all, "versioned"] as const,
  sessions: () => [...meKeys.all, "sessions"] as const,
  /** Second factors: the authenticator app, passkeys, recovery codes left. */
  mfa: () => [...meKeys.all, "mfa"] as const,
};

export type VersionedUser = { user: User; etag: string | null };

export function fetchMe(): Promise<User> {
  return unwrap(api.GET("/api/v1/users/me"));
}

export function useMe(enabled: boolean) {
  return useQuery({ queryKey: meKeys.user(), queryFn: fetchMe, enabled, staleTime: 60_000 });
}

async function fetchVersionedMe(): Promise<VersionedUser> {
  const { data, etag } = await unwrapVersioned(api.GET("/api/v1/users/me"));
  return { user: data, etag };
}

export function useVersionedMe() {
  return useQuery({ queryKey: meKeys.versioned(), queryFn: fetchVersionedMe });
}

export async function updateMe(body: Schemas["MeUpdate"], etag: string | null): Promise<VersionedUser> {
  const saved = await unwrapVersioned(api.PATCH("/api/v1/users/me", { params: { header: ifMatch(etag) }, body }));
  return { user: saved.data, etag: saved.etag };
}

/** Who just logged in, so the auth state need not ask again. */
export function storeSignedIn(queryClient: QueryClient, user: User): void {
  queryClient.setQueryData(meKeys.user(), user);
}

/** After a save: the header's name and the form's version both move on. */
export function storeMe(queryClient: QueryClient, saved: VersionedUser): void {
  queryClient.setQueryData(meKeys.user(), saved.user);
  queryClient.setQueryData(meKeys.versioned(), saved);
}

/** Read the profile again (after a version conflict: the form shows the latest). */
export function useReloadMe() {
  const queryClient = useQueryClient();
  return () => queryClient.invalidateQueries({ queryKey: meKeys.all });
}

export function useMySessions() {
  return useQuery({
    queryKey: meKeys.sessions(),
    queryFn: (): Promise<LoginSession[]> => unwrap(api.GET("/api/v1/users/me/sessions")),
  });
}

/** A password change ends the other sessions on the server: the list must follow. */
export function useSessionsChanged() {
  const queryClient = useQueryClient();
  return () => queryClient.invalidateQueries({ queryKey: meKeys.sessions() });
}

type After = { onSuccess?: () => void; onError?: (error: Error) => void };

export function useEndMySession({ onSuccess, onError }: After = {}) {
  const changed = useSessionsChanged();
  return useMutation({
    mutationFn: (id: string) =>
      unwrap(api.DELETE("/api/v1/users/me/sessions/{session_id}", { params: { path: { session_id: id } } })),
    onSuccess,
    onError,
    // Ended or not, the list shows what the server now holds.
    onSettled: changed,
  });
}

export function useEndMyOtherSessions({ onSuccess, onError }: After = {}) {
  const changed = useSessionsChanged();
  return useMutation({
    mutationFn: () => unwrap(api.DELETE("/api/v1/users/me/sessions")),
    onSuccess,
    onError,
    onSettled: changed,
  });
}
