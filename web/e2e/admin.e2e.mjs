// The admin portal at /admin: scenarios (filled in with the app).
import { assertUsable, newPage, stepper } from "./harness.mjs";

export const scenarios = [
  {
    name: "admin: the login page renders",
    async run(browser) {
      const page = await newPage(browser);
      const step = stepper(this.name);
      await step(page, "open /admin", async () => {
        await page.goto("/admin");
        await page.getByLabel("Email").waitFor();
        await assertUsable(page);
      });
      await page.context().close();
    },
  },
];
