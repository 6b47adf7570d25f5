// Checks done in the browser before anything is sent. The server has the last word
// (its password policy knows the common-password list); these catch the obvious early.
import type { Role, Schemas, User } from "../shared/api";

export const MIN_PASSWORD_LENGTH = 8;

export function emailError(value: string): string | null {
  if (!value.trim()) return "Enter your email address";
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value.trim()) ? null : "Enter a valid email address";
}

export function nameError(value: string): string | null {
  return value.trim() ? null : "Enter your name";
}

export function newPasswordError(value: string): string | null {
  if (!value) return "Choose a password";
  return value.length >= MIN_PASSWORD_LENGTH ? null : `Use at least ${MIN_PASSWORD_LENGTH} characters`;
}

export function confirmError(value: string, password: string): string | null {
  if (!value) return "Enter the password again";
  return value === password ? null : "The passwords do not match";
}

export type ProfileValues = { name: string; email: string; current_password: string };
export type MeUpdate = Schemas["MeUpdate"];

/** Emails compare as the server stores them: trimmed, lower-cased. */
export function sameEmail(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

export function emailChanged(user: Pick<User, "email">, values: Pick<ProfileValues, "email">): boolean {
  return !sameEmail(user.email, values.email);
}

/**
 * The PATCH body: only what changed, so an untouched field never overwrites a change
 * made elsewhere; the current password only with a new email. Null: nothing to send.
 */
export function profileChanges(user: Pick<User, "name" | "email">, values: ProfileValues): MeUpdate | null {
  const body: MeUpdate = {};
  if (values.name.trim() !== user.name) body.name = values.name.trim();
  if (emailChanged(user, values)) {
    body.email = values.email.trim();
    body.current_password = values.current_password;
  }
  return Object.keys(body).length ? body : null;
}

const ROLE_LABELS: Record<Role, string> = {
  admin: "Administrator",
  user: "User",
  readonly: "Read-only administrator",
};

export function roleLabel(role: Role): string {
  return ROLE_LABELS[role] ?? role;
}

/** "JD" for "Jane Doe": the avatar's letters. */
export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words;
  return letters.map((word) => word?.charAt(0).toUpperCase() ?? "").join("") || "?";
}

/** The export's file name: gatehouse-data-2026-11-25.json (the reader's local date). */
export function exportFilename(now: Date = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `gatehouse-data-${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}.json`;
}
