// The portal's screens render in the shared harness (src/shared/test-utils.tsx: a fake
// fetch behind the real session, API client and auth state), in Mantine's test mode so
// dialogs and menus appear without waiting for their transitions.
import type { ReactElement } from "react";
import { renderWithProviders } from "../shared/test-utils";

type Options = Parameters<typeof renderWithProviders>[1];

export function renderAdmin(ui: ReactElement, options: Options = {}) {
  return renderWithProviders(ui, { mantineEnv: "test", ...options });
}
