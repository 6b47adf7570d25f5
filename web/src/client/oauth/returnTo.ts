// The login page's part in "Log in with Gatehouse": /oauth2/authorize sends a person
// without a session here with where to go back to. Only the authorize endpoint is a
// place to go back to: any other return_to is ignored, so a link cannot make the login
// an open redirect.

const AUTHORIZE = "/oauth2/authorize?";

/** The return_to to honour, or null. */
export function acceptReturnTo(value: string | null | undefined): string | null {
  if (!value?.startsWith(AUTHORIZE)) return null;
  // A path on this origin by construction ("/oauth2/..."), but a backslash or a control
  // character has no business in it: browsers read some of them as "//".
  if ([...value].some(unsafe)) return null;
  return value;
}

function unsafe(char: string): boolean {
  const code = char.charCodeAt(0);
  return char === "\\" || code < 0x20 || code === 0x7f;
}

export type SignInRequest = {
  /** Where the browser goes once it is logged in: /oauth2/authorize?… */
  returnTo: string;
  /** The application asked for a new login (prompt=login, max_age): show the form even when logged in. */
  fresh: boolean;
  /** The email the application suggested. */
  loginHint: string;
};

/** The login's OpenID parameters, or null when it is a plain login. */
export function readSignInRequest(params: URLSearchParams): SignInRequest | null {
  const returnTo = acceptReturnTo(params.get("return_to"));
  if (!returnTo) return null;
  return { returnTo, fresh: params.get("fresh") === "1", loginHint: params.get("login_hint")?.trim() ?? "" };
}

/** The login that leads back to this authorize request (the consent page, signed out). */
export function loginFor(authorizeQuery: string, extra: Record<string, string> = {}): string {
  return `/login?${new URLSearchParams({ return_to: `${AUTHORIZE}${authorizeQuery}`, ...extra })}`;
}

/**
 * Leave the app for a page the server answers (the authorize endpoint, or the
 * application's redirect). One object, so a test can watch it (jsdom cannot navigate).
 */
export const browser = {
  assign(url: string): void {
    window.location.assign(url);
  },
};
