import { describe, expect, it } from "vitest";
import { acceptReturnTo, loginFor, readSignInRequest } from "./returnTo";

describe("the login's return_to", () => {
  it("is accepted only for the authorize endpoint of this origin", () => {
    const authorize = "/oauth2/authorize?response_type=code&client_id=gh_abc&state=x";
    expect(acceptReturnTo(authorize)).toBe(authorize);
    for (const refused of [
      null,
      "",
      "/",
      "/sessions",
      "/oauth2/authorize",
      "/oauth2/token?grant_type=x",
      "https://evil.example/oauth2/authorize?x=1",
      "//evil.example/oauth2/authorize?x=1",
      "/\\evil.example/oauth2/authorize?x=1",
      "/oauth2/authorize/../../evil?x",
      " /oauth2/authorize?x=1",
      "/oauth2/authorize?x=1\n",
      "javascript:alert(1)//oauth2/authorize?",
    ]) {
      expect(acceptReturnTo(refused), String(refused)).toBeNull();
    }
  });

  it("comes with fresh and the login hint", () => {
    const params = new URLSearchParams({
      return_to: "/oauth2/authorize?client_id=gh_abc",
      fresh: "1",
      login_hint: " jane@example.com ",
    });
    expect(readSignInRequest(params)).toEqual({
      returnTo: "/oauth2/authorize?client_id=gh_abc",
      fresh: true,
      loginHint: "jane@example.com",
    });
    expect(readSignInRequest(new URLSearchParams({ return_to: "/profile", fresh: "1" }))).toBeNull();
  });

  it("leads the consent page's visitor back through the authorize endpoint", () => {
    const url = new URL(loginFor("client_id=gh_abc&scope=openid%20email&state=s%26t"), "http://localhost");
    expect(url.pathname).toBe("/login");
    expect(url.searchParams.get("return_to")).toBe(
      "/oauth2/authorize?client_id=gh_abc&scope=openid%20email&state=s%26t",
    );
  });
});
