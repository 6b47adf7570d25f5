import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router";
import { apiError, fakeFetch, renderWithProviders } from "../shared/test-utils";
import { SignupForm } from "./pages/SignupPage";

function renderForm() {
  return renderWithProviders(
    <Routes>
      <Route path="/signup" element={<SignupForm />} />
    </Routes>,
    { route: "/signup" },
  );
}

async function fill(values: { name?: string; email?: string; password?: string; confirm?: string }) {
  const user = userEvent.setup();
  if (values.name) await user.type(screen.getByLabelText(/^Name/), values.name);
  if (values.email) await user.type(screen.getByLabelText(/^Email/), values.email);
  if (values.password) await user.type(screen.getByLabelText(/^Password/), values.password);
  if (values.confirm) await user.type(screen.getByLabelText(/^Confirm password/), values.confirm);
  await user.click(screen.getByRole("button", { name: "Create account" }));
}

const good = { name: "Jane Doe", email: "jane@example.com", password: "maple river cobalt 73" };
// The one answer to a sign-up, whether or not the address had an account.
const ACCEPTED = { status: "check_your_email", message: "Thanks: we have sent an email to this address." };

it("refuses passwords that do not match, without asking the server", async () => {
  const calls = fakeFetch(() => undefined);
  renderForm();
  await fill({ ...good, confirm: "maple river cobalt 74" });
  expect(await screen.findByText("The passwords do not match")).toBeInTheDocument();
  expect(calls).toHaveLength(0);
});

it("asks for every field and a long enough password", async () => {
  const calls = fakeFetch(() => undefined);
  renderForm();
  await fill({ email: "jane", password: "short", confirm: "short" });
  expect(await screen.findByText("Enter your name")).toBeInTheDocument();
  expect(screen.getByText("Enter a valid email address")).toBeInTheDocument();
  expect(screen.getByText("Use at least 8 characters")).toBeInTheDocument();
  expect(calls).toHaveLength(0);
});

it("shows the server's word on the field it is about", async () => {
  fakeFetch((call) =>
    call.path === "/api/v1/auth/register"
      ? apiError(400, "VALIDATION_ERROR", { name: ["Value error, must be at most 255 characters once normalised"] })
      : undefined,
  );
  renderForm();
  await fill({ ...good, confirm: good.password });
  const name = screen.getByLabelText(/^Name/);
  await waitFor(() => expect(name).toHaveAccessibleDescription("Must be at most 255 characters once normalised"));
});

it("says plainly when sign-up is closed", async () => {
  fakeFetch(() => apiError(403, "REGISTRATION_DISABLED"));
  renderForm();
  await fill({ ...good, confirm: good.password });
  expect(await screen.findByRole("alert")).toHaveTextContent("Sign-up is closed on this service");
});

it("registers, then logs in with the same credentials", async () => {
  const calls = fakeFetch((call) => {
    if (call.path === "/api/v1/auth/register") return { status: 202, body: ACCEPTED };
    if (call.path === "/api/v1/auth/token") return { body: { access_token: "a", expires_in: 900 } };
    if (call.path === "/api/v1/users/me")
      return { body: { id: "u1", name: "Jane Doe", email: good.email, role: "user", created_at: "", updated_at: "" } };
    return undefined;
  });
  renderForm();
  await fill({ ...good, confirm: good.password });
  await waitFor(() => expect(calls.map((c) => c.path)).toContain("/api/v1/auth/token"));
  expect(calls[0]).toMatchObject({ path: "/api/v1/auth/register", body: good });
  const login = calls.find((c) => c.path === "/api/v1/auth/token");
  expect(login?.body).toMatchObject({ username: good.email, password: good.password });
  expect(login?.headers.get("X-Token-Transport")).toBe("cookie");
});

it("says to check the inbox, never that the address is taken, when the login after it is refused", async () => {
  const calls = fakeFetch((call) => {
    if (call.path === "/api/v1/auth/register") return { status: 202, body: ACCEPTED };
    if (call.path === "/api/v1/auth/token") return apiError(401, "INVALID_CREDENTIALS");
    return undefined;
  });
  renderForm();
  await fill({ ...good, confirm: good.password });
  const notice = await screen.findByRole("status");
  expect(notice).toHaveTextContent("Check your email");
  expect(notice).toHaveTextContent(`We have sent an email to ${good.email}`);
  expect(screen.queryByRole("alert")).not.toBeInTheDocument();
  expect(screen.queryByText(/already exists|taken/i)).not.toBeInTheDocument();
  expect(screen.getByRole("link", { name: "Forgot your password?" })).toHaveAttribute("href", "/forgot-password");
  expect(calls.map((c) => c.path)).toEqual(["/api/v1/auth/register", "/api/v1/auth/token"]);
});
