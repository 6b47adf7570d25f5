import { useDocumentTitle } from "@mantine/hooks";

/** "Users · Gatehouse admin" in the tab and the history list. */
export function usePageTitle(title: string | null | undefined): void {
  useDocumentTitle(title ? `${title} · Gatehouse admin` : "Gatehouse admin");
}
