// What each scope lets an application do, in the words a person reads on the consent
// screen and under "Connected apps" (docs/oidc.md lists the scopes).
const WORDS: Record<string, string> = {
  openid: "Sign you in",
  profile: "See your name",
  email: "See your email address",
  offline_access: "Keep access while you are away",
  roles: "See your role",
};
const ORDER = Object.keys(WORDS);

export function describeScope(scope: string): string {
  return Object.hasOwn(WORDS, scope) ? (WORDS[scope] as string) : scope;
}

/** Scopes in the order above (sign-in first), whatever order the API listed them in. */
export function orderScopes(scopes: string[]): string[] {
  const rank = (scope: string) => (ORDER.includes(scope) ? ORDER.indexOf(scope) : ORDER.length);
  return [...scopes].sort((a, b) => rank(a) - rank(b));
}
