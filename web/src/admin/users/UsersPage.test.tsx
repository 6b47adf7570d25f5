import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";
import { person, server, signIn } from "../../shared/test-utils";
import { renderAdmin } from "../test-utils";
import { UsersPage } from "./UsersPage";

const ada = person("user", { name: "Ada Lovelace", email: "ada@example.com" });
const alan = person("readonly", { name: "Alan Turing", email: "alan@example.com" });

beforeEach(() => {
  server.reset();
  server.on("GET /api/v1/users", {
    body: { data: [ada, alan], meta: { page: 1, page_size: 20, total_count: 42, total_pages: 3 } },
  });
});

describe("the users table", () => {
  it("shows a page of users with the total, linking each to their page", async () => {
    signIn(person("admin"));
    renderAdmin(<UsersPage />, { route: "/users" });
    expect(await screen.findByRole("link", { name: "Ada Lovelace" })).toHaveAttribute("href", `/users/${ada.id}`);
    expect(screen.getByText("42 users")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Page 3" })).toBeInTheDocument();
  });

  it("asks the API for the page, sort and search the URL holds", async () => {
    signIn(person("admin"));
    renderAdmin(<UsersPage />, { route: "/users?page=2&sort=name&order=asc&search=ada" });
    await screen.findByText("Ada Lovelace");
    const query = server.callsTo("GET", "/api/v1/users")[0]!.query;
    expect(Object.fromEntries(query)).toEqual({
      page: "2",
      page_size: "20",
      sort_by: "name",
      order: "asc",
      search: "ada",
    });
    expect(screen.getByRole("searchbox", { name: "Search" })).toHaveValue("ada");
  });

  it("sorts by a column when its header is clicked, and says so", async () => {
    signIn(person("admin"));
    renderAdmin(<UsersPage />, { route: "/users?page=2" });
    await screen.findByText("Ada Lovelace");
    const email = screen.getByRole("columnheader", { name: /Email/ });
    expect(email).toHaveAttribute("aria-sort", "none");
    await userEvent.click(within(email).getByRole("button"));
    await waitFor(() => expect(email).toHaveAttribute("aria-sort", "ascending"));
    const last = server.callsTo("GET", "/api/v1/users").at(-1)!.query;
    expect(last.get("sort_by")).toBe("email");
    expect(last.get("order")).toBe("asc");
    expect(last.get("page")).toBe("1");
  });

  it("searches once typing pauses, from page 1", async () => {
    signIn(person("admin"));
    renderAdmin(<UsersPage />, { route: "/users?page=3" });
    await screen.findByText("Ada Lovelace");
    const before = server.callsTo("GET", "/api/v1/users").length;
    await userEvent.type(screen.getByRole("searchbox", { name: "Search" }), "lovelace");
    await waitFor(() => expect(server.callsTo("GET", "/api/v1/users").at(-1)!.query.get("search")).toBe("lovelace"));
    const searches = server.callsTo("GET", "/api/v1/users").slice(before);
    // One request for the whole word, not one per letter.
    expect(searches).toHaveLength(1);
    expect(searches[0]!.query.get("page")).toBe("1");
  });

  it("offers Create user and deleted users to an admin only", async () => {
    signIn(person("admin"));
    const { unmount } = renderAdmin(<UsersPage />, { route: "/users" });
    await screen.findByText("Ada Lovelace");
    expect(screen.getByRole("button", { name: "Create user" })).toBeInTheDocument();
    expect(screen.getByLabelText("Show deleted users")).toBeInTheDocument();
    unmount();

    signIn(person("readonly"));
    renderAdmin(<UsersPage />, { route: "/users" });
    await screen.findByText("Ada Lovelace");
    expect(screen.queryByRole("button", { name: "Create user" })).not.toBeInTheDocument();
    expect(screen.queryByLabelText("Show deleted users")).not.toBeInTheDocument();
  });

  it("puts an error in words, a rate limit included", async () => {
    signIn(person("admin"));
    server.on("GET /api/v1/users", {
      status: 429,
      headers: { "Retry-After": "120" },
      body: {
        error: { code: "RATE_LIMITED", message: "Too many requests", details: {}, timestamp: "", request_id: null },
      },
    });
    renderAdmin(<UsersPage />, { route: "/users" });
    expect(await screen.findByRole("alert")).toHaveTextContent("Too many attempts. Try again in 2 minutes.");
  });
});
