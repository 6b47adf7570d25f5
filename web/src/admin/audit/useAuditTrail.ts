import { useInfiniteQuery } from "@tanstack/react-query";
import { api, unwrap } from "../../shared/api";
import type { AuditQuery } from "./auditFilters";

export const AUDIT_PAGE_SIZE = 25;

/** The trail, newest first, one page at a time: each "Load older" follows `next_cursor`. */
export function useAuditTrail(query: AuditQuery, enabled = true) {
  return useInfiniteQuery({
    queryKey: ["audit", query],
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
