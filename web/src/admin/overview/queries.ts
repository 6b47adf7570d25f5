// The overview: its query key and the hook that reads it. Nothing writes it; it is read
// again every minute while the page is open, and on every visit.
import { useQuery } from "@tanstack/react-query";
import { api, type Schemas, unwrap } from "../../shared/api";

export type Overview = Schemas["Overview"];
export type Activity = Schemas["Activity"];

export const OVERVIEW_REFRESH_MS = 60_000;

export const overviewKeys = {
  all: ["overview"] as const,
};

export function useOverview(enabled = true) {
  return useQuery({
    queryKey: overviewKeys.all,
    enabled,
    queryFn: () => unwrap(api.GET("/api/v1/overview")),
    refetchInterval: OVERVIEW_REFRESH_MS,
  });
}
