// The event types a subscription may ask for (docs/events.md, "Event types"), typed
// against the API's own enum so a new type in the OpenAPI document shows up here.
import type { Schemas } from "../../shared/api";

type Listed = Exclude<Schemas["WebhookCreate"]["event_types"][number], "*">;
export type EventTypes = Schemas["WebhookCreate"]["event_types"];

export const ALL_TYPES = "*";

export const EVENT_TYPES: { value: Listed; description: string }[] = [
  { value: "user.created", description: "an account was created" },
  { value: "user.updated", description: "email, name, role or verification changed" },
  { value: "user.deleted", description: "an account was deleted" },
  { value: "user.restored", description: "a deleted account was restored" },
  { value: "user.erased", description: "a deleted account's data was erased for good" },
  { value: "user.password_changed", description: "a password was changed or reset" },
  { value: "webhook.disabled", description: "a subscription was disabled after failures" },
  { value: "webhook.test", description: "a test event" },
];

/** The API's body for a selection, or null when nothing is selected. */
export function toEventTypes(selected: string[]): EventTypes | null {
  if (selected.length === 0) return null;
  if (selected.includes(ALL_TYPES)) return [ALL_TYPES];
  return selected as EventTypes;
}

export function describeEventTypes(types: string[]): string {
  if (types.includes(ALL_TYPES)) return "Every event type";
  return types.join(", ");
}
