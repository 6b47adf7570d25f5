// The users resource: its query keys and every hook that reads or writes it, so a
// screen never builds a key by hand and every write invalidates the same set.
import { keepPreviousData, skipToken, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type AdminUser, api, type LoginSession, type Schemas, type User, unwrap } from "../../shared/api";
import { ifMatch, unwrapVersioned, type Versioned } from "../../shared/versioned";
import { auditKeys } from "../audit/queries";
import type { ListUsersQuery } from "./usersState";

export const usersKeys = {
  all: ["users"] as const,
  /** Everything read from GET /users: the table's pages and the rows a user's page looks up. */
  lists: () => [...usersKeys.all, "list"] as const,
  list: (query: ListUsersQuery) => [...usersKeys.lists(), query] as const,
  row: (id: string, email: string) => [...usersKeys.lists(), "row", id, email] as const,
  detail: (id: string) => [...usersKeys.all, "detail", id] as const,
  sessions: (id: string) => [...usersKeys.all, "sessions", id] as const,
  mfa: (id: string) => [...usersKeys.all, "mfa", id] as const,
};

type After<T, V = void> = { onSuccess?: (data: T, variables: V) => void; onError?: (error: Error) => void };

/** A page of the users table; the old page stays on screen while the next one loads. */
export function useUsersList(query: ListUsersQuery) {
  return useQuery({
    queryKey: usersKeys.list(query),
    queryFn: () => unwrap(api.GET("/api/v1/users", { params: { query } })),
    placeholderData: keepPreviousData,
  });
}

/** One user with its ETag, for writes that must not overwrite an unseen change. */
export function useUser(id: string) {
  return useQuery({
    queryKey: usersKeys.detail(id),
    queryFn: () => unwrapVersioned(api.GET("/api/v1/users/{user_id}", { params: { path: { user_id: id } } })),
  });
}

/**
 * The user as lists show it (with `last_login_at`, which GET /users/{id} leaves out):
 * a search for their email, then the row with their id.
 */
export function useUserRow(user: User | undefined) {
  return useQuery({
    queryKey: usersKeys.row(user?.id ?? "", user?.email ?? ""),
    queryFn: user
      ? async (): Promise<AdminUser | null> => {
          const page = await unwrap(
            api.GET("/api/v1/users", { params: { query: { search: user.email, page_size: 100 } } }),
          );
          return page.data.find((row) => row.id === user.id) ?? null;
        }
      : skipToken,
  });
}

export function useUserSessions(id: string) {
  return useQuery({
    queryKey: usersKeys.sessions(id),
    queryFn: () => unwrap(api.GET("/api/v1/users/{user_id}/sessions", { params: { path: { user_id: id } } })),
  });
}

/**
 * After any write to a user: the page shows the answer at once (or reads the user
 * again), the lists and rows are read again, and so is the audit trail that recorded it.
 */
function useUserChanged() {
  const queryClient = useQueryClient();
  return (id: string, written?: Versioned<User>) => {
    if (written) queryClient.setQueryData(usersKeys.detail(id), written);
    else queryClient.invalidateQueries({ queryKey: usersKeys.detail(id) });
    queryClient.invalidateQueries({ queryKey: usersKeys.lists() });
    queryClient.invalidateQueries({ queryKey: auditKeys.all });
  };
}

export function useCreateUser(after: After<User, Schemas["UserCreate"]> = {}) {
  const changed = useUserChanged();
  return useMutation({
    mutationFn: (body: Schemas["UserCreate"]) => unwrap(api.POST("/api/v1/users", { body })),
    onSuccess: (user, body) => {
      changed(user.id);
      after.onSuccess?.(user, body);
    },
    onError: after.onError,
  });
}

/** A change of name, email or role, sent with the version it was read at. */
export function useUpdateUser(current: Versioned<User>, after: After<Versioned<User>, Schemas["UserPatch"]> = {}) {
  const changed = useUserChanged();
  const id = current.data.id;
  return useMutation({
    mutationFn: (body: Schemas["UserPatch"]) =>
      unwrapVersioned(
        api.PATCH("/api/v1/users/{user_id}", {
          params: { path: { user_id: id }, header: ifMatch(current.etag) },
          body,
        }),
      ),
    onSuccess: (result, body) => {
      changed(id, result);
      after.onSuccess?.(result, body);
    },
    onError: after.onError,
  });
}

/** Read the user again (after a version conflict: the latest version replaces the one shown). */
export function useReloadUser(id: string) {
  const queryClient = useQueryClient();
  return () => queryClient.refetchQueries({ queryKey: usersKeys.detail(id) });
}

export function useDeleteUser(current: Versioned<User>, after: After<void> = {}) {
  const queryClient = useQueryClient();
  const id = current.data.id;
  return useMutation({
    mutationFn: () =>
      unwrap(
        api.DELETE("/api/v1/users/{user_id}", { params: { path: { user_id: id }, header: ifMatch(current.etag) } }),
      ),
    onSuccess: () => {
      // A deleted user no longer answers GET /users/{id} (reading it again would only
      // meet a 404); their sessions have ended, and the trail recorded it.
      queryClient.removeQueries({ queryKey: usersKeys.detail(id) });
      queryClient.invalidateQueries({ queryKey: usersKeys.lists() });
      queryClient.invalidateQueries({ queryKey: usersKeys.sessions(id) });
      queryClient.invalidateQueries({ queryKey: auditKeys.all });
      after.onSuccess?.();
    },
    onError: after.onError,
  });
}

export function useRestoreUser(id: string, after: After<User> = {}) {
  const changed = useUserChanged();
  return useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/users/{user_id}/restore", { params: { path: { user_id: id } } })),
    onSuccess: (restored) => {
      changed(id);
      after.onSuccess?.(restored);
    },
    onError: after.onError,
  });
}

export function useExportUser(id: string, after: After<unknown> = {}) {
  return useMutation({
    mutationFn: () => unwrap(api.GET("/api/v1/users/{user_id}/export", { params: { path: { user_id: id } } })),
    onSuccess: (data) => after.onSuccess?.(data),
    onError: after.onError,
  });
}

/** Ending sessions changes the user's list and writes to the audit trail. */
function useSessionsEnded(userId: string) {
  const queryClient = useQueryClient();
  return () => {
    queryClient.invalidateQueries({ queryKey: usersKeys.sessions(userId) });
    queryClient.invalidateQueries({ queryKey: auditKeys.all });
  };
}

export function useEndUserSession(userId: string, after: After<void, LoginSession> = {}) {
  const ended = useSessionsEnded(userId);
  return useMutation({
    mutationFn: (session: LoginSession) =>
      unwrap(
        api.DELETE("/api/v1/users/{user_id}/sessions/{session_id}", {
          params: { path: { user_id: userId, session_id: session.id } },
        }),
      ),
    onSuccess: (_, session) => {
      ended();
      after.onSuccess?.(undefined, session);
    },
    onError: after.onError,
  });
}

export function useEndAllUserSessions(userId: string, after: After<void> = {}) {
  const ended = useSessionsEnded(userId);
  return useMutation({
    mutationFn: () => unwrap(api.DELETE("/api/v1/users/{user_id}/sessions", { params: { path: { user_id: userId } } })),
    onSuccess: () => {
      ended();
      after.onSuccess?.();
    },
    onError: after.onError,
  });
}

/** A user's second factors: kinds, names, dates and codes left, never a secret. */
export function useUserMfa(id: string) {
  return useQuery({
    queryKey: usersKeys.mfa(id),
    queryFn: () => unwrap(api.GET("/api/v1/users/{user_id}/mfa", { params: { path: { user_id: id } } })),
  });
}

/** Remove every factor: the user's sessions end as well, and the trail records it. */
export function useResetUserMfa(userId: string, after: After<void> = {}) {
  const queryClient = useQueryClient();
  const ended = useSessionsEnded(userId);
  return useMutation({
    mutationFn: () => unwrap(api.DELETE("/api/v1/users/{user_id}/mfa", { params: { path: { user_id: userId } } })),
    onSuccess: () => {
      queryClient.invalidateQueries({ queryKey: usersKeys.mfa(userId) });
      ended();
      after.onSuccess?.();
    },
    onError: after.onError,
  });
}
