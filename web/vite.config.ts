import { resolve } from "node:path";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// One build, two pages: the client app (index.html, served at /) and the admin portal
// (admin/index.html, served at /admin). They share chunks under /assets, which the API
// serves with a year-long cache because every name carries a content hash.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    // The shared chunk (React, Mantine, the query and router libraries) is ~470 kB,
    // 145 kB gzipped, cached for a year; splitting it further buys nothing on a LAN.
    chunkSizeWarningLimit: 700,
    rollupOptions: {
      input: {
        client: resolve(import.meta.dirname, "index.html"),
        admin: resolve(import.meta.dirname, "admin/index.html"),
      },
    },
  },
  server: {
    // `npm run dev`: the API on :8000 answers the apps' calls.
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
  test: {
    environment: "jsdom",
    // One module graph and one jsdom per worker, not per file: 88 s -> 23 s here. What a
    // test leaves in module-wide state is undone after each test (src/test-reset.ts).
    isolate: false,
    globals: true,
    setupFiles: ["src/test-setup.ts", "src/test-reset.ts"],
    css: false,
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
