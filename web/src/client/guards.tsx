// Who may see which route. A signed-out visitor to a private page goes to the login,
// which brings them back there afterwards; a signed-in one skips the login and sign-up.
import type { ReactNode } from "react";
import { type Location, Navigate, Outlet, useLocation } from "react-router";
import { useAuth } from "../shared/auth";
import { useEnrolmentRequired } from "../shared/mfa/queries";
import { PageLoader } from "../shared/ui";

type FromState = { from?: Pick<Location, "pathname" | "search" | "hash"> } | null;

/** Where the login should lead: the page the visitor wanted, or the profile. */
export function useReturnPath(): string {
  const from = (useLocation().state as FromState)?.from;
  if (!from?.pathname || from.pathname === "/login") return "/";
  return `${from.pathname}${from.search ?? ""}${from.hash ?? ""}`;
}

export function RequireAuth() {
  const { status } = useAuth();
  const location = useLocation();
  if (status === "loading") return <PageLoader />;
  if (status === "signed-out") return <Navigate to="/login" replace state={{ from: location }} />;
  return <Outlet />;
}

export function PublicOnly({ children }: { children?: ReactNode }) {
  const { status } = useAuth();
  const target = useReturnPath();
  if (status === "loading") return <PageLoader />;
  if (status === "signed-in") return <Navigate to={target} replace />;
  return children ?? <Outlet />;
}

/**
 * A role that requires MFA, without MFA set up, meets 403 MFA_ENROLLMENT_REQUIRED on
 * every page but the security settings: it goes there, and the page says why.
 */
export function EnrolmentRedirect() {
  const required = useEnrolmentRequired();
  const { pathname } = useLocation();
  if (required && pathname !== "/security") return <Navigate to="/security" replace />;
  return <Outlet />;
}
