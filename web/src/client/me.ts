// The profile with its version (the ETag), so a save cannot silently overwrite a change
// made meanwhile in another tab or by an admin (docs/api.md, "ETag and If-Match").
import { type QueryClient, useQuery } from "@tanstack/react-query";
import { api, type User } from "../shared/api";
import { ME_KEY } from "../shared/auth";
import { ifMatch, unwrapVersioned } from "../shared/versioned";
import type { MeUpdate } from "./validation";

export type VersionedUser = { user: User; etag: string | null };

export const VERSIONED_ME_KEY = [...ME_KEY, "versioned"] as const;
export const SESSIONS_KEY = [...ME_KEY, "sessions"] as const;

export async function fetchVersionedMe(): Promise<VersionedUser> {
  const { data, etag } = await unwrapVersioned(api.GET("/api/v1/users/me"));
  return { user: data, etag };
}

export function useVersionedMe() {
  return useQuery({ queryKey: VERSIONED_ME_KEY, queryFn: fetchVersionedMe });
}

export async function updateMe(body: MeUpdate, etag: string | null): Promise<VersionedUser> {
  const saved = await unwrapVersioned(api.PATCH("/api/v1/users/me", { params: { header: ifMatch(etag) }, body }));
  return { user: saved.data, etag: saved.etag };
}

/** After a save: the header's name and the form's version both move on. */
export function storeMe(queryClient: QueryClient, saved: VersionedUser): void {
  queryClient.setQueryData(ME_KEY, saved.user);
  queryClient.setQueryData(VERSIONED_ME_KEY, saved);
}
