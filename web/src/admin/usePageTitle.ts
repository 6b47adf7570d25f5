import { useEffect } from "react";

/** "Users · Gatehouse admin" in the tab and the history list. */
export function usePageTitle(title: string | null | undefined): void {
  useEffect(() => {
    document.title = title ? `${title} · Gatehouse admin` : "Gatehouse admin";
  }, [title]);
}
