import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";
import { person, server, signIn } from "../shared/test-utils";
import { App } from "./App";
import { renderAdmin } from "./test-utils";

beforeEach(() => {
  server.reset();
  server.on("GET /api/v1/users", {
    body: { data: [], meta: { page: 1, page_size: 20, total_count: 0, total_pages: 0 } },
  });
});

describe("the portal's door", () => {
  it("turns a plain user away in words, with the way to the client app and a Log out", async () => {
    signIn(person("user", { name: "Paula Plain" }));
    renderAdmin(<App />, { route: "/users" });
    expect(
      await screen.findByRole("heading", { name: "This account cannot use the admin portal" }),
    ).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Go to the Gatehouse app" })).toHaveAttribute("href", "/");
    // Nothing of the portal is fetched for them.
    expect(server.screenCalls()).toHaveLength(0);
    await userEvent.click(screen.getByRole("button", { name: "Log out" }));
    expect(await screen.findByRole("form", { name: "Log in" })).toBeInTheDocument();
    expect(server.callsTo("POST", "/api/v1/auth/logout")).toHaveLength(1);
  });

  it("shows the login form to nobody in particular", async () => {
    renderAdmin(<App />, { route: "/audit" });
    expect(await screen.findByRole("form", { name: "Log in" })).toBeInTheDocument();
  });

  it("lets a readonly admin in, and has a page for unknown addresses", async () => {
    signIn(person("readonly", { name: "Rosalind Franklin" }));
    renderAdmin(<App />, { route: "/no-such-page" });
    expect(await screen.findByRole("heading", { name: "Page not found" })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Users" })).toBeInTheDocument();
    expect(screen.getByText("Rosalind Franklin")).toBeInTheDocument();
  });
});
