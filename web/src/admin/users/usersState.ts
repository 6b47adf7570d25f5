// The users table's state lives in the URL query (?page=2&sort=email&order=asc&search=…),
// so a reload, a shared link or the back button shows the same page.
import type { Role, Schemas } from "../../shared/api";

export type SortField = Schemas["SortField"];
export type Order = Schemas["Order"];

export type UsersState = {
  page: number;
  pageSize: number;
  sortBy: SortField;
  order: Order;
  search: string;
  role: Role | null;
  includeDeleted: boolean;
};

export const SORT_FIELDS: readonly SortField[] = ["created_at", "updated_at", "email", "name", "role"];
export const ROLES: readonly Role[] = ["admin", "user", "readonly"];
export const PAGE_SIZES = [10, 20, 50, 100] as const;

export const DEFAULT_USERS_STATE: UsersState = {
  page: 1,
  pageSize: 20,
  sortBy: "created_at",
  order: "desc",
  search: "",
  role: null,
  includeDeleted: false,
};

function oneOf<T extends string>(value: string | null, allowed: readonly T[]): T | null {
  return value !== null && (allowed as readonly string[]).includes(value) ? (value as T) : null;
}

function positiveInt(value: string | null): number | null {
  if (value === null || !/^\d+$/.test(value)) return null;
  const n = Number(value);
  return n >= 1 && n <= 100_000 ? n : null;
}

/** The table's state from the URL; anything unknown or malformed falls back to the default. */
export function readUsersState(params: URLSearchParams): UsersState {
  const size = positiveInt(params.get("size"));
  return {
    page: positiveInt(params.get("page")) ?? DEFAULT_USERS_STATE.page,
    pageSize: size !== null && (PAGE_SIZES as readonly number[]).includes(size) ? size : DEFAULT_USERS_STATE.pageSize,
    sortBy: oneOf(params.get("sort"), SORT_FIELDS) ?? DEFAULT_USERS_STATE.sortBy,
    order: oneOf(params.get("order"), ["asc", "desc"] as const) ?? DEFAULT_USERS_STATE.order,
    search: (params.get("search") ?? "").trim().slice(0, 255),
    role: oneOf(params.get("role"), ROLES),
    includeDeleted: params.get("deleted") === "1",
  };
}

/** The URL query for a state; defaults are left out so plain links stay plain. */
export function writeUsersState(state: UsersState): URLSearchParams {
  const params = new URLSearchParams();
  const d = DEFAULT_USERS_STATE;
  if (state.search) params.set("search", state.search);
  if (state.role) params.set("role", state.role);
  if (state.includeDeleted) params.set("deleted", "1");
  if (state.sortBy !== d.sortBy) params.set("sort", state.sortBy);
  if (state.order !== d.order) params.set("order", state.order);
  if (state.pageSize !== d.pageSize) params.set("size", String(state.pageSize));
  if (state.page !== d.page) params.set("page", String(state.page));
  return params;
}

export type ListUsersQuery = {
  page: number;
  page_size: number;
  sort_by: SortField;
  order: Order;
  search?: string;
  role?: Role;
  include_deleted?: boolean;
};

/** The GET /api/v1/users query for a state (only the filters that are set). */
export function toListQuery(state: UsersState): ListUsersQuery {
  const query: ListUsersQuery = {
    page: state.page,
    page_size: state.pageSize,
    sort_by: state.sortBy,
    order: state.order,
  };
  if (state.search) query.search = state.search;
  if (state.role) query.role = state.role;
  if (state.includeDeleted) query.include_deleted = true;
  return query;
}

/**
 * A click on a column header: the same column flips its order; another column starts
 * A→Z for text and newest first for dates. Either way back to page 1.
 */
export function sortBy(state: UsersState, field: SortField): UsersState {
  if (state.sortBy === field) {
    return { ...state, order: state.order === "asc" ? "desc" : "asc", page: 1 };
  }
  const dates: SortField[] = ["created_at", "updated_at"];
  return { ...state, sortBy: field, order: dates.includes(field) ? "desc" : "asc", page: 1 };
}

/** A new filter shows its first page: page 3 of the old results means nothing now. */
export function withFilter(state: UsersState, change: Partial<Omit<UsersState, "page">>): UsersState {
  return { ...state, ...change, page: 1 };
}
