// The audit trail: its query keys and the hook that reads it. Writes elsewhere (users,
// sessions) invalidate `auditKeys.all`, since each of them records an event.
import { useInfiniteQuery } from "@tanstack/react-query";
import { api, unwrap } from "../../shared/api";
import type { AuditQuery } from "./auditFilters";

export const AUDIT_PAGE_SIZE = 25;

export const auditKeys = {
  all: ["audit"] as const,
  trail: (query: AuditQuery) => [...auditKeys.all, "trail", query] as const,
};

/** The trail, newest first, one page at a time: each "Load older" follows `next_cursor`. */
export function useAuditTrail(query: AuditQuery, enabled = true) {
  return useInfiniteQuery({
    queryKey: auditKeys.trail(query),
    enabled,
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET("/api/v1/audit-events", {
          params: { query: { ...query, limit: AUDIT_PAGE_SIZE, ...(pageParam ? { cursor: pageParam } : {}) } },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor,
  });
}
