import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { User } from "../shared/api";
import { apiError, fakeFetch, renderWithProviders } from "../shared/test-utils";
import { ProfileForm } from "./pages/ProfilePage";

const jane: User = {
  id: "u1",
  name: "Jane Doe",
  email: "jane@example.com",
  role: "user",
  created_at: "2026-11-25T10:00:00Z",
  updated_at: "2026-11-25T10:00:00Z",
};

function renderForm() {
  return renderWithProviders(<ProfileForm current={{ user: jane, etag: '"3"' }} />, { withNotifications: true });
}

const save = () => screen.getByRole("button", { name: "Save changes" });

it("offers nothing to save until something changed", async () => {
  fakeFetch(() => undefined);
  renderForm();
  expect(save()).toBeDisabled();
  await userEvent.type(screen.getByLabelText(/^Name/), "-Smith");
  expect(save()).toBeEnabled();
});

it("sends only the changed name, with the version it was read at", async () => {
  const calls = fakeFetch((call) =>
    call.method === "PATCH" ? { body: { ...jane, name: "Jane Smith" }, headers: { ETag: '"4"' } } : undefined,
  );
  renderForm();
  const name = screen.getByLabelText(/^Name/);
  await userEvent.clear(name);
  await userEvent.type(name, "Jane Smith");
  expect(screen.queryByLabelText(/^Current password/)).not.toBeInTheDocument();
  await userEvent.click(save());
  await waitFor(() => expect(calls.filter((c) => c.method === "PATCH")).toHaveLength(1));
  const patch = calls.find((c) => c.method === "PATCH");
  expect(patch?.path).toBe("/api/v1/users/me");
  expect(patch?.body).toEqual({ name: "Jane Smith" });
  expect(patch?.headers.get("If-Match")).toBe('"3"');
  expect(await screen.findByText("Profile saved")).toBeInTheDocument();
});

it("asks for the current password only when the email changes", async () => {
  const calls = fakeFetch(() => undefined);
  renderForm();
  const email = screen.getByLabelText(/^Email/);
  await userEvent.clear(email);
  await userEvent.type(email, "jane@example.org");
  expect(screen.getByLabelText(/^Current password/)).toBeInTheDocument();
  await userEvent.click(save());
  expect(await screen.findByText("Enter your current password to change your email")).toBeInTheDocument();
  expect(calls.filter((c) => c.method === "PATCH")).toHaveLength(0);

  await userEvent.clear(email);
  await userEvent.type(email, "JANE@example.com");
  expect(screen.queryByLabelText(/^Current password/)).not.toBeInTheDocument();
});

it("puts a wrong current password on its field", async () => {
  const calls = fakeFetch((call) => (call.method === "PATCH" ? apiError(403, "INVALID_CURRENT_PASSWORD") : undefined));
  renderForm();
  const email = screen.getByLabelText(/^Email/);
  await userEvent.clear(email);
  await userEvent.type(email, "jane@example.org");
  await userEvent.type(screen.getByLabelText(/^Current password/), "not it");
  await userEvent.click(save());
  await waitFor(() =>
    expect(screen.getByLabelText(/^Current password/)).toHaveAccessibleDescription(
      expect.stringContaining("Your current password is not right."),
    ),
  );
  expect(calls.find((c) => c.method === "PATCH")?.body).toEqual({
    email: "jane@example.org",
    current_password: "not it",
  });
});

it("asks for the second factor when the email change needs it, then saves the same change", async () => {
  let stepped = false;
  const calls = fakeFetch((call) => {
    if (call.path === "/api/v1/auth/mfa/step-up") {
      stepped = true;
      return { body: { step_up_expires_at: "2026-11-25T10:05:00Z" } };
    }
    if (call.method !== "PATCH") return undefined;
    if (!stepped) return apiError(403, "STEP_UP_REQUIRED", { methods: ["totp"] });
    return { body: { ...jane, email: "jane@example.org" }, headers: { ETag: '"4"' } };
  });
  renderForm();
  const email = screen.getByLabelText(/^Email/);
  await userEvent.clear(email);
  await userEvent.type(email, "jane@example.org");
  await userEvent.type(screen.getByLabelText(/^Current password/), "my password");
  await userEvent.click(save());
  const modal = await screen.findByRole("dialog", { name: "Confirm it's you" });
  expect(within(modal).queryByRole("switch", { name: "Use a recovery code" })).not.toBeInTheDocument();
  await userEvent.type(within(modal).getByLabelText(/^Authentication code/), "123456");
  await userEvent.click(within(modal).getByRole("button", { name: "Confirm" }));
  expect(await screen.findByText("Profile saved")).toBeInTheDocument();
  const patches = calls.filter((c) => c.method === "PATCH");
  expect(patches).toHaveLength(2);
  expect(patches[1]!.body).toEqual(patches[0]!.body);
  expect(patches[1]!.headers.get("If-Match")).toBe('"3"');
});

it("explains a change made meanwhile elsewhere", async () => {
  fakeFetch((call) => (call.method === "PATCH" ? apiError(409, "VERSION_CONFLICT") : undefined));
  renderForm();
  await userEvent.type(screen.getByLabelText(/^Name/), "!");
  await userEvent.click(save());
  expect(await screen.findByRole("alert")).toHaveTextContent("Someone else changed this in the meantime");
  expect(screen.getByRole("button", { name: "Load the latest version" })).toBeInTheDocument();
});
