// The browser as the apps expect it, before any app module loads (src/test-reset.ts,
// the second setup file, imports them).
import "@testing-library/jest-dom/vitest";

// Mantine reads these browser APIs, which jsdom lacks.
if (!window.matchMedia) {
  window.matchMedia = (query: string) =>
    ({
      matches: false,
      media: query,
      onchange: null,
      addListener: () => {},
      removeListener: () => {},
      addEventListener: () => {},
      removeEventListener: () => {},
      dispatchEvent: () => false,
    }) as MediaQueryList;
}
if (!window.ResizeObserver) {
  window.ResizeObserver = class {
    observe() {}
    unobserve() {}
    disconnect() {}
  };
}

// jsdom gives Node's Request, which refuses the app's relative URLs ("/api/v1/…"); the
// browser resolves them against the page. Imported before anything creates the API client.
const NativeRequest = globalThis.Request;

class PageRequest extends NativeRequest {
  constructor(input: RequestInfo | URL, init?: RequestInit) {
    super(typeof input === "string" ? new URL(input, window.location.href).href : input, init);
  }
}

globalThis.Request = PageRequest as typeof Request;
