// The client app at /: scenarios (filled in with the app).
import { assertUsable, newPage, stepper } from "./harness.mjs";

export const scenarios = [
  {
    name: "client: the login page renders",
    async run(browser) {
      const page = await newPage(browser);
      const step = stepper(this.name);
      await step(page, "open /", async () => {
        await page.goto("/");
        await page.getByLabel("Email").waitFor();
        await assertUsable(page);
      });
      await page.context().close();
    },
  },
];
