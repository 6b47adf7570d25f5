// The audit trail's filters: kept in the URL as typed (times as the datetime-local
// inputs hold them, in the reader's time zone) and turned into the API's query, whose
// times must be RFC 3339 with an offset (docs/audit.md, "Reading the trail").
import type { Schemas } from "../../shared/api";

export type Outcome = Schemas["Outcome"];
export const OUTCOMES: readonly Outcome[] = ["success", "failure", "denied"];

export type AuditFilters = {
  action: string;
  outcome: Outcome | null;
  actorId: string;
  targetId: string;
  requestId: string;
  /** `YYYY-MM-DDTHH:mm` (or with seconds), local time, as a datetime-local input holds it. */
  since: string;
  until: string;
};

export const EMPTY_FILTERS: AuditFilters = {
  action: "",
  outcome: null,
  actorId: "",
  targetId: "",
  requestId: "",
  since: "",
  until: "",
};

const URL_KEYS: Record<Exclude<keyof AuditFilters, "outcome">, string> = {
  action: "action",
  actorId: "actor",
  targetId: "target",
  requestId: "request",
  since: "since",
  until: "until",
};

export function readAuditFilters(params: URLSearchParams): AuditFilters {
  const outcome = params.get("outcome");
  const filters: AuditFilters = {
    ...EMPTY_FILTERS,
    outcome: OUTCOMES.includes(outcome as Outcome) ? (outcome as Outcome) : null,
  };
  for (const [field, key] of Object.entries(URL_KEYS) as [keyof typeof URL_KEYS, string][]) {
    filters[field] = (params.get(key) ?? "").trim();
  }
  return filters;
}

export function writeAuditFilters(filters: AuditFilters): URLSearchParams {
  const params = new URLSearchParams();
  for (const [field, key] of Object.entries(URL_KEYS) as [keyof typeof URL_KEYS, string][]) {
    const value = filters[field].trim();
    if (value) params.set(key, value);
  }
  if (filters.outcome) params.set("outcome", filters.outcome);
  return params;
}

const LOCAL_DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/;

/** Minutes east of UTC at a given instant: +60 in Paris in winter, -300 in New York. */
export type OffsetAt = (date: Date) => number;
const browserOffset: OffsetAt = (date) => -date.getTimezoneOffset();

const pad = (n: number) => String(n).padStart(2, "0");

/**
 * A datetime-local value ("2026-01-15T10:30") as RFC 3339 with the reader's offset at
 * that moment ("2026-01-15T10:30:00+01:00"); null when it is not a valid date and time.
 */
export function localToRfc3339(value: string, offsetAt: OffsetAt = browserOffset): string | null {
  const match = LOCAL_DATETIME.exec(value.trim());
  if (!match) return null;
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0] = match
    .slice(1)
    .map((part) => Number(part ?? 0));
  const date = new Date(year, month - 1, day, hour, minute, second);
  // new Date rolls 2026-02-30 over into March: refuse instead of moving the filter.
  if (date.getFullYear() !== year || date.getMonth() !== month - 1 || date.getDate() !== day) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  const offset = offsetAt(date);
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  const zone = `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  return `${match[1]}-${match[2]}-${match[3]}T${match[4]}:${match[5]}:${pad(second)}${zone}`;
}

export type AuditQuery = {
  action?: string;
  outcome?: Outcome;
  actor_id?: string;
  target_id?: string;
  request_id?: string;
  since?: string;
  until?: string;
};

export type FilterProblems = Partial<Record<"since" | "until", string>>;

/** Filters the form can't send as they are (a malformed time), by field. */
export function filterProblems(filters: AuditFilters): FilterProblems {
  const problems: FilterProblems = {};
  for (const field of ["since", "until"] as const) {
    if (filters[field] && localToRfc3339(filters[field]) === null) problems[field] = "Enter a date and a time";
  }
  return problems;
}

/** The GET /api/v1/audit-events query for a set of filters (only those that are set). */
export function toAuditQuery(filters: AuditFilters, offsetAt: OffsetAt = browserOffset): AuditQuery {
  const query: AuditQuery = {};
  if (filters.action.trim()) query.action = filters.action.trim();
  if (filters.outcome) query.outcome = filters.outcome;
  if (filters.actorId.trim()) query.actor_id = filters.actorId.trim();
  if (filters.targetId.trim()) query.target_id = filters.targetId.trim();
  if (filters.requestId.trim()) query.request_id = filters.requestId.trim();
  const since = filters.since ? localToRfc3339(filters.since, offsetAt) : null;
  const until = filters.until ? localToRfc3339(filters.until, offsetAt) : null;
  if (since) query.since = since;
  if (until) query.until = until;
  return query;
}

export function hasFilters(filters: AuditFilters): boolean {
  return writeAuditFilters(filters).toString() !== "";
}
