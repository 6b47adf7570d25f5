import { skipToken, useQuery, useQueryClient } from "@tanstack/react-query";
import { type AdminUser, api, type User, unwrap } from "../../shared/api";
import { unwrapVersioned, type Versioned } from "../../shared/versioned";

export const userKey = (id: string) => ["user", id] as const;

/** One user with its ETag, for writes that must not overwrite an unseen change. */
export function useUser(id: string) {
  return useQuery({
    queryKey: userKey(id),
    queryFn: () => unwrapVersioned(api.GET("/api/v1/users/{user_id}", { params: { path: { user_id: id } } })),
  });
}

/**
 * The user as lists show it (with `last_login_at`, which GET /users/{id} leaves out):
 * a search for their email, then the row with their id.
 */
export function useUserRow(user: User | undefined) {
  return useQuery({
    queryKey: ["user-row", user?.id, user?.email],
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

/** After a write: the page shows the answer at once, lists are read again. */
export function useUserWritten(id: string) {
  const queryClient = useQueryClient();
  return (written?: Versioned<User>) => {
    if (written) queryClient.setQueryData(userKey(id), written);
    else queryClient.invalidateQueries({ queryKey: userKey(id) });
    queryClient.invalidateQueries({ queryKey: ["users"] });
    queryClient.invalidateQueries({ queryKey: ["user-row", id] });
    queryClient.invalidateQueries({ queryKey: ["audit"] });
  };
}
