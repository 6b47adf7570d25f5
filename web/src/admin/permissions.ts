// Who may do what in the portal. The API decides for real (docs/api.md, "Endpoints and
// roles"); these rules only keep controls the API would refuse off the screen.
import type { Role } from "../shared/api";
import { useAuth } from "../shared/auth";

/** Admins and readonly admins use the portal; a plain `user` has the client app. */
export function canUsePortal(role: Role | null | undefined): boolean {
  return role === "admin" || role === "readonly";
}

/** Every write (create, edit, delete, end sessions, webhooks) is for admins only. */
export function canWrite(role: Role | null | undefined): boolean {
  return role === "admin";
}

/** The audit trail is admin-only: readonly gets 403 (docs/audit.md, "Reading the trail"). */
export function canReadAudit(role: Role | null | undefined): boolean {
  return role === "admin";
}

/** The overview is admin-only: readonly gets 403 (docs/api.md, "Endpoints and roles"). */
export function canReadOverview(role: Role | null | undefined): boolean {
  return role === "admin";
}

export function usePermissions() {
  const { user } = useAuth();
  const role = user?.role ?? null;
  return {
    me: user,
    role,
    canWrite: canWrite(role),
    canReadAudit: canReadAudit(role),
    canReadOverview: canReadOverview(role),
  };
}
