// Audit rows in words: short ids, and the safe details as one readable line.
import type { Schemas } from "../../shared/api";

export type AuditEvent = Schemas["AuditEventRead"];

/** The first block of a UUID: enough to tell rows apart; the full id is in the title. */
export function shortId(id: string | null | undefined): string {
  if (!id) return "—";
  return id.length > 12 ? `${id.slice(0, 8)}…` : id;
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return "—";
  if (Array.isArray(value)) return value.map(describeValue).join(", ");
  if (typeof value === "object") {
    const record = value as Record<string, unknown>;
    if ("from" in record && "to" in record) return `${describeValue(record.from)} → ${describeValue(record.to)}`;
    return Object.entries(record)
      .map(([key, inner]) => `${key} ${describeValue(inner)}`)
      .join(", ");
  }
  if (value === "") {
    return "";
  }
  return String(value);
}

/** "from user → admin · fields role": the details object flattened for a table cell. */
export function summarizeDetails(event: Pick<AuditEvent, "details" | "pii">): string {
  const parts = Object.entries(event.details ?? {})
    .map(([key, value]) => [key, describeValue(value)] as const)
    .filter(([, text]) => text !== "")
    .map(([key, text]) => `${key}: ${text}`);
  // What was typed at a login is how a failed attempt by nobody-in-particular is told apart.
  const identifier = event.pii?.identifier;
  if (typeof identifier === "string" && identifier) parts.unshift(`as ${identifier}`);
  return parts.join(" · ");
}

export function formatTimeWithSeconds(value: string): string {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return value;
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export const OUTCOME_COLORS: Record<string, string> = { success: "teal", failure: "orange", denied: "red" };
