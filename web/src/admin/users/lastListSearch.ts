// The users table's query as last seen, so "Back to users" returns to the same page,
// sort and search (kept in memory only; a reload starts from the URL anyway).
let last = "";

export function rememberListSearch(search: string): void {
  last = search;
}

export function usersListPath(): string {
  return last ? `/users?${last}` : "/users";
}
