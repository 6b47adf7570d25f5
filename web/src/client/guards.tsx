// Who may see which route. A signed-out visitor to a private page goes to the login,
// which brings them back there afterwards; a signed-in one skips the login and sign-up.
import { type Location, Navigate, Outlet, useLocation } from "react-router";
import { useAuth } from "../shared/auth";
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

export function PublicOnly() {
  const { status } = useAuth();
  const target = useReturnPath();
  if (status === "loading") return <PageLoader />;
  if (status === "signed-in") return <Navigate to={target} replace />;
  return <Outlet />;
}
