// Runs every scenario against the Gatehouse at E2E_BASE_URL (tests/web/test_e2e.py
// starts one with a fresh database and runs this). Scenarios that only wait (for an
// access token to expire) run beside the others; the rest run one after another.
// Exit status 1 when any scenario failed; screenshots of failed steps in E2E_FAILURE_DIR.
import { rm } from "node:fs/promises";
import { env, launch } from "./harness.mjs";

const files = ["./client.e2e.mjs", "./admin.e2e.mjs", "./mfa.e2e.mjs", "./clients.e2e.mjs"];
// `node e2e/run.mjs admin` or E2E_ONLY=admin,client: only the scenarios whose names match.
const only = [...process.argv.slice(2), ...(process.env.E2E_ONLY ?? "").split(",")].filter(Boolean);

const scenarios = [];
for (const file of files) {
  const module = await import(file);
  scenarios.push(...module.scenarios);
}
const chosen = only.length ? scenarios.filter((s) => only.some((o) => s.name.includes(o))) : scenarios;

// Screenshots of an earlier run's failures would mislead: only this run's are kept.
await rm(env.failures, { recursive: true, force: true });
const browser = await launch();
const failures = [];
async function run(scenario) {
  const started = Date.now();
  console.log(`scenario: ${scenario.name}`);
  try {
    await scenario.run(browser);
    console.log(`passed: ${scenario.name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (error) {
    failures.push(scenario.name);
    console.log(`FAILED: ${scenario.name}\n${error.stack ?? error}`);
  }
}
console.log(`e2e against ${env.baseUrl}: ${chosen.length} scenarios`);
const background = chosen.filter((s) => s.background).map(run);
for (const scenario of chosen.filter((s) => !s.background)) await run(scenario);
await Promise.all(background);
await browser.close();
console.log(`${chosen.length - failures.length} passed, ${failures.length} failed`);
process.exit(failures.length ? 1 : 0);
