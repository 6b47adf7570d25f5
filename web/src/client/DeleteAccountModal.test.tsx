import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { apiError, fakeFetch, renderWithProviders } from "../shared/test-utils";
import { DeleteAccountModal } from "./DeleteAccountModal";

function renderModal(onDeleted = vi.fn()) {
  renderWithProviders(<DeleteAccountModal email="jane@example.com" opened onClose={() => {}} onDeleted={onDeleted} />);
  return onDeleted;
}

it("stays disabled until the account's email is typed", async () => {
  const calls = fakeFetch((call) => (call.method === "DELETE" ? { status: 204 } : undefined));
  const onDeleted = renderModal();
  const button = await screen.findByRole("button", { name: "Delete my account" });
  const input = screen.getByLabelText("Type your email address to confirm");
  expect(button).toBeDisabled();

  await userEvent.type(input, "jane@example.co");
  expect(button).toBeDisabled();
  await userEvent.type(input, "m");
  expect(button).toBeEnabled();

  await userEvent.click(button);
  await waitFor(() => expect(onDeleted).toHaveBeenCalledOnce());
  expect(calls).toMatchObject([{ method: "DELETE", path: "/api/v1/users/me" }]);
});

it("accepts the email in any case, as the server compares it", async () => {
  fakeFetch(() => undefined);
  renderModal();
  await userEvent.type(await screen.findByLabelText("Type your email address to confirm"), " Jane@Example.com");
  expect(screen.getByRole("button", { name: "Delete my account" })).toBeEnabled();
});

it("says why the account was not deleted", async () => {
  fakeFetch(() => apiError(409, "LAST_ADMIN"));
  const onDeleted = renderModal();
  await userEvent.type(await screen.findByLabelText("Type your email address to confirm"), "jane@example.com");
  await userEvent.click(screen.getByRole("button", { name: "Delete my account" }));
  expect(await screen.findByRole("alert")).toHaveTextContent("This is the last admin");
  expect(onDeleted).not.toHaveBeenCalled();
});
