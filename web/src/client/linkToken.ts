import { useState } from "react";
import { useSearchParams } from "react-router";

/**
 * The one-time token of an emailed link, read once and then taken out of the address
 * bar, so it is not bookmarked, shared or kept in the history (docs/email.md).
 */
export function useLinkToken(): string | null {
  const [params] = useSearchParams();
  const [token] = useState(() => {
    const value = params.get("token");
    if (value) window.history.replaceState(window.history.state, "", window.location.pathname);
    return value;
  });
  return token;
}
