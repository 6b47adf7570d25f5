import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";
import { apiError, person, server } from "../../shared/test-utils";
import { renderAdmin } from "../test-utils";
import { CreateUserModal, validateNewUser } from "./CreateUserModal";

beforeEach(() => server.reset());

async function fill(password: string) {
  await userEvent.type(screen.getByLabelText(/^Name/), "Katherine Johnson");
  await userEvent.type(screen.getByLabelText(/^Email/), "katherine@example.com");
  await userEvent.type(screen.getByLabelText(/^Password/), password);
  await userEvent.click(screen.getByRole("button", { name: "Create user" }));
}

describe("creating a user", () => {
  it("checks the obvious before asking the server", () => {
    expect(validateNewUser({ name: " ", email: "nope", password: "short", role: "user" })).toEqual({
      name: "Enter a name",
      email: "Enter an email address",
      password: "Use at least 8 characters",
    });
    expect(validateNewUser({ name: "Ada", email: "ada@example.com", password: "long enough", role: "user" })).toEqual(
      {},
    );
  });

  it("shows the server's reason at the field it is about", async () => {
    server.on(
      "POST /api/v1/users",
      apiError(
        400,
        "VALIDATION_ERROR",
        { password: ["Password must not contain your email address or name"] },
        "Invalid input",
      ),
    );
    renderAdmin(<CreateUserModal opened onClose={() => {}} />);
    await fill("katherine johnson 1918");
    expect(await screen.findByText("Password must not contain your email address or name")).toBeInTheDocument();
  });

  it("sends the new account with its role, then opens its page", async () => {
    server.on("POST /api/v1/users", (call) => ({
      status: 201,
      body: { ...person("user"), ...(call.body as object), id: "new-id" },
    }));
    renderAdmin(<CreateUserModal opened onClose={() => {}} />, { route: "/users", path: "/users" });
    await fill("quiet harbour lamp 7");
    await waitFor(() => expect(server.callsTo("POST", "/api/v1/users")).toHaveLength(1));
    expect(server.callsTo("POST", "/api/v1/users")[0]!.body).toEqual({
      name: "Katherine Johnson",
      email: "katherine@example.com",
      password: "quiet harbour lamp 7",
      role: "user",
    });
    expect(await screen.findByText("Elsewhere")).toBeInTheDocument();
  });
});
