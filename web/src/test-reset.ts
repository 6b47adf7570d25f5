// After every test, in every file: the test files share one module graph (Vitest runs
// them without isolation), so what a test leaves in a module-wide store would reach
// the next file's tests.
import { cleanup } from "@testing-library/react";
import { afterEach } from "vitest";
import { resetSharedState } from "./shared/test-utils";

afterEach(() => {
  cleanup();
  resetSharedState();
  // jsdom keeps cookies for the whole run: none may outlive its test.
  for (const cookie of document.cookie.split(";")) {
    const name = cookie.split("=")[0]?.trim();
    if (name) document.cookie = `${name}=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/`;
  }
});
