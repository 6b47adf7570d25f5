// Swagger UI and ReDoc for the API docs pages (/docs, /redoc), from the npm packages
// pinned in package.json, copied into the build: Gatehouse serves them itself, so the
// pages load no third-party script and work without internet.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const web = join(dirname(fileURLToPath(import.meta.url)), "..");
const target = join(web, "dist", "api-docs");
const assets = [
  "swagger-ui-dist/swagger-ui-bundle.js",
  "swagger-ui-dist/swagger-ui.css",
  "redoc/bundles/redoc.standalone.js",
];

mkdirSync(target, { recursive: true });
for (const asset of assets) {
  copyFileSync(join(web, "node_modules", asset), join(target, asset.split("/").pop()));
}
