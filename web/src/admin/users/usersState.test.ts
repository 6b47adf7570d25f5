import { describe, expect, it } from "vitest";
import { DEFAULT_USERS_STATE, readUsersState, sortBy, toListQuery, withFilter, writeUsersState } from "./usersState";

const read = (query: string) => readUsersState(new URLSearchParams(query));

describe("the users table's URL state", () => {
  it("reads every part of the table from the query", () => {
    expect(read("page=3&size=50&sort=email&order=asc&search=ada&role=readonly&deleted=1")).toEqual({
      page: 3,
      pageSize: 50,
      sortBy: "email",
      order: "asc",
      search: "ada",
      role: "readonly",
      includeDeleted: true,
    });
  });

  it("falls back to the defaults for anything unknown or malformed", () => {
    expect(read("")).toEqual(DEFAULT_USERS_STATE);
    expect(read("page=0&size=7&sort=password&order=up&role=root&deleted=yes")).toEqual(DEFAULT_USERS_STATE);
    expect(read("page=-2").page).toBe(1);
    expect(read("page=2.5").page).toBe(1);
  });

  it("writes only what differs from the defaults, and reads back the same state", () => {
    expect(writeUsersState(DEFAULT_USERS_STATE).toString()).toBe("");
    const state = {
      ...DEFAULT_USERS_STATE,
      page: 2,
      sortBy: "name" as const,
      order: "asc" as const,
      search: "ada lovelace",
    };
    const query = writeUsersState(state);
    expect(query.toString()).toBe("search=ada+lovelace&sort=name&order=asc&page=2");
    expect(readUsersState(query)).toEqual(state);
  });

  it("maps the state to the API's list parameters, leaving unset filters out", () => {
    expect(toListQuery(DEFAULT_USERS_STATE)).toEqual({ page: 1, page_size: 20, sort_by: "created_at", order: "desc" });
    expect(toListQuery(read("search=ada&role=admin&deleted=1&page=4&size=10"))).toEqual({
      page: 4,
      page_size: 10,
      sort_by: "created_at",
      order: "desc",
      search: "ada",
      role: "admin",
      include_deleted: true,
    });
  });
});

describe("sorting and filtering", () => {
  const onPage3 = { ...DEFAULT_USERS_STATE, page: 3 };

  it("flips the order when the sorted column is clicked again, back on page 1", () => {
    const byEmail = sortBy(onPage3, "email");
    expect(byEmail).toMatchObject({ sortBy: "email", order: "asc", page: 1 });
    expect(sortBy(byEmail, "email")).toMatchObject({ sortBy: "email", order: "desc" });
  });

  it("starts a date column newest first and a text column A to Z", () => {
    expect(sortBy({ ...DEFAULT_USERS_STATE, sortBy: "email" }, "updated_at")).toMatchObject({ order: "desc" });
    expect(sortBy(DEFAULT_USERS_STATE, "name")).toMatchObject({ order: "asc" });
  });

  it("shows the first page of a new filter", () => {
    expect(withFilter(onPage3, { search: "ada" })).toMatchObject({ search: "ada", page: 1 });
    expect(withFilter(onPage3, { role: "user" }).page).toBe(1);
  });
});
