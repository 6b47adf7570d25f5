import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { apiError, fakeFetch, renderWithProviders } from "../shared/test-utils";
import { PasswordPage } from "./pages/PasswordPage";

async function change(current: string, next: string, confirm = next) {
  await userEvent.type(screen.getByLabelText(/^Current password/), current);
  await userEvent.type(screen.getByLabelText(/^New password/), next);
  await userEvent.type(screen.getByLabelText(/^Confirm new password/), confirm);
  await userEvent.click(screen.getByRole("button", { name: "Change password" }));
}

it("changes the password and says the other sessions ended", async () => {
  const calls = fakeFetch((call) => (call.path === "/api/v1/users/me/password" ? { status: 204 } : undefined));
  renderWithProviders(<PasswordPage />, { route: "/password" });
  await change("old secret words", "harbour violet quartz 58");
  expect(await screen.findByText(/your other sessions have been ended/)).toBeInTheDocument();
  const sent = calls.find((call) => call.path === "/api/v1/users/me/password");
  expect(sent?.body).toEqual({ current_password: "old secret words", new_password: "harbour violet quartz 58" });
  expect(screen.getByLabelText(/^New password/)).toHaveValue("");
});

it("puts the server's refusals on the fields they are about", async () => {
  let answer = apiError(403, "INVALID_CURRENT_PASSWORD");
  fakeFetch(() => answer);
  renderWithProviders(<PasswordPage />, { route: "/password" });
  await change("not it", "harbour violet quartz 58");
  await waitFor(() =>
    expect(screen.getByLabelText(/^Current password/)).toHaveAccessibleDescription(
      "Your current password is not right.",
    ),
  );

  answer = apiError(400, "VALIDATION_ERROR", {
    new_password: ["Password is too common; choose one that is harder to guess"],
  });
  await userEvent.click(screen.getByRole("button", { name: "Change password" }));
  await waitFor(() =>
    expect(screen.getByLabelText(/^New password/)).toHaveAccessibleDescription(
      expect.stringContaining("Password is too common"),
    ),
  );
});

it("refuses a confirmation that differs before asking the server", async () => {
  const calls = fakeFetch(() => undefined);
  renderWithProviders(<PasswordPage />, { route: "/password" });
  await change("old secret words", "harbour violet quartz 58", "harbour violet quartz 59");
  expect(await screen.findByText("The passwords do not match")).toBeInTheDocument();
  expect(calls).toHaveLength(0);
});
