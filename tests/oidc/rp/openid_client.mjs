// panva's openid-client (v6) as a confidential web client of a live Gatehouse: discovery,
// authorization code + PKCE with state and nonce, the ID token's checks, userinfo,
// introspection, refresh, revocation, RP-initiated logout and client_credentials.
//
// The browser's part is played here, as a user agent would: the JSON login, the
// provider's session cookie from POST /api/v1/oauth2/session, then the authorization URL
// with that cookie and without following the redirect (the consent, for a client that is
// not trusted, through the client app's API). Everything else is openid-client's.
//
// Usage: node openid_client.mjs '<json>' with {issuer, client_id, client_secret,
// redirect_uri, post_logout_redirect_uri, email, password, cc_client_id, cc_client_secret}.
// Prints one JSON object: {ok: true, ...what each step saw} or {ok: false, step, error}.
import * as client from "openid-client";

const input = JSON.parse(process.argv[2]);
const issuer = new URL(input.issuer);
const result = { ok: false, steps: [] };
let current = "start";

// The provider runs on plain http on loopback in the tests: openid-client refuses that
// unless told (never in production).
const insecure = { execute: [client.allowInsecureRequests] };

async function step(name, action) {
  current = name;
  const value = await action();
  result.steps.push(name);
  return value;
}

function describe(error) {
  const out = { name: error?.name, message: error?.message, code: error?.code };
  for (const key of ["error", "error_description", "status"]) {
    if (error?.[key] !== undefined) out[key] = error[key];
  }
  if (error?.cause !== undefined) {
    out.cause = error.cause instanceof Error ? describe(error.cause) : error.cause;
  }
  return out;
}

/** The error openid-client raised for `action`, or a failure when it succeeded. */
async function refused(action) {
  try {
    await action();
  } catch (error) {
    return describe(error);
  }
  throw new Error("expected a refusal, got a success");
}

function decodeJwt(token) {
  const [header, payload] = token.split(".").slice(0, 2).map((part) => JSON.parse(Buffer.from(part, "base64url")));
  return { header, payload };
}

/** The user agent: a JSON login, then the provider's cookie for this login session. */
async function browserLogin() {
  const login = await fetch(new URL("/api/v1/auth/token", issuer), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: input.email, password: input.password }),
  });
  if (login.status !== 200) throw new Error(`login: ${login.status} ${await login.text()}`);
  const { access_token: accessToken } = await login.json();
  const session = await fetch(new URL("/api/v1/oauth2/session", issuer), {
    method: "POST",
    headers: { authorization: `Bearer ${accessToken}` },
  });
  if (session.status !== 204) throw new Error(`oauth2 session: ${session.status} ${await session.text()}`);
  const cookie = session.headers
    .getSetCookie()
    .map((line) => line.split(";")[0])
    .find((pair) => pair.startsWith("gatehouse_op="));
  if (!cookie) throw new Error(`no gatehouse_op cookie in ${session.headers.getSetCookie()}`);
  return { accessToken, cookie, setCookie: session.headers.getSetCookie().find((l) => l.startsWith("gatehouse_op=")) };
}

/**
 * GET the authorization URL as the browser would (the cookie, no redirect followed);
 * a consent asked for is given through the client app's API, as its page would.
 * Returns the URL the provider finally sends the browser to.
 */
async function authorize(url, browser, seen) {
  let target = url;
  for (let hop = 0; hop < 3; hop++) {
    const response = await fetch(target, { headers: { cookie: browser.cookie }, redirect: "manual" });
    const location = response.headers.get("location");
    if (response.status !== 302 && response.status !== 303) {
      throw new Error(`authorize: ${response.status} ${await response.text()}`);
    }
    const next = new URL(location, issuer);
    if (next.origin === issuer.origin && next.pathname === "/consent") {
      seen.consent_asked = true;
      const consent = await fetch(new URL("/api/v1/oauth2/consent", issuer), {
        method: "POST",
        headers: { authorization: `Bearer ${browser.accessToken}`, "content-type": "application/json" },
        body: JSON.stringify({ query: next.search.slice(1) }),
      });
      if (consent.status !== 200) throw new Error(`consent: ${consent.status} ${await consent.text()}`);
      target = new URL((await consent.json()).redirect_to, issuer);
      continue;
    }
    return next;
  }
  throw new Error("authorize: too many hops");
}

async function main() {
  const config = await step("discovery", () =>
    client.discovery(
      issuer,
      input.client_id,
      { redirect_uris: [input.redirect_uri] },
      client.ClientSecretBasic(input.client_secret),
      insecure,
    ),
  );
  const metadata = config.serverMetadata();
  result.discovery = metadata;

  // client_credentials: a service acting as itself.
  const service = await step("discovery (service client)", () =>
    client.discovery(issuer, input.cc_client_id, undefined, client.ClientSecretPost(input.cc_client_secret), insecure),
  );
  const cc = await step("client_credentials", () => client.clientCredentialsGrant(service, { scope: "roles" }));
  result.client_credentials = {
    token_type: cc.token_type,
    scope: cc.scope,
    has_refresh_token: Boolean(cc.refresh_token),
    has_id_token: Boolean(cc.id_token),
    access_token: decodeJwt(cc.access_token),
    introspection: await step("introspection (service client)", () => client.tokenIntrospection(service, cc.access_token)),
  };
  // Another client's token is not this one's to introspect.
  result.client_credentials.introspection_by_other = await step("introspection by another client", () =>
    client.tokenIntrospection(config, cc.access_token),
  );

  const browser = await step("browser login", browserLogin);
  result.op_cookie = browser.setCookie;

  // Authorization code + PKCE (S256), state and nonce.
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const scope = "openid profile email offline_access roles";
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: input.redirect_uri,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  result.authorization_url = authorizationUrl.href;
  const callback = await step("authorize", () => authorize(authorizationUrl, browser, result));
  result.callback = { params: Object.fromEntries(callback.searchParams), origin: callback.origin + callback.pathname };

  const tokens = await step("code exchange", () =>
    client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    }),
  );
  result.tokens = {
    token_type: tokens.token_type,
    expires_in: tokens.expires_in,
    scope: tokens.scope,
    has_refresh_token: Boolean(tokens.refresh_token),
    access_token: decodeJwt(tokens.access_token),
    id_token_header: decodeJwt(tokens.id_token).header,
  };
  const claims = tokens.claims();
  result.id_token_claims = claims;

  result.userinfo = await step("userinfo", () => client.fetchUserInfo(config, tokens.access_token, claims.sub));
  result.introspection = await step("introspection", () => client.tokenIntrospection(config, tokens.access_token));

  // A second login to the same client reuses the provider's session (no login asked).
  const silentState = client.randomState();
  const silentVerifier = client.randomPKCECodeVerifier();
  const silent = await step("prompt=none with a session", async () => {
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: input.redirect_uri,
      scope: "openid email",
      code_challenge: await client.calculatePKCECodeChallenge(silentVerifier),
      code_challenge_method: "S256",
      state: silentState,
      prompt: "none",
    });
    const back = await authorize(url, browser, {});
    return client.authorizationCodeGrant(config, back, {
      pkceCodeVerifier: silentVerifier,
      expectedState: silentState,
      idTokenExpected: true,
    });
  });
  result.silent = { claims: silent.claims(), scope: silent.scope, has_refresh_token: Boolean(silent.refresh_token) };

  // Refresh: rotation, a new ID token for the same person; the old refresh token is spent.
  const refreshed = await step("refresh", () => client.refreshTokenGrant(config, tokens.refresh_token));
  result.refreshed = {
    scope: refreshed.scope,
    rotated: Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token,
    id_token_claims: refreshed.id_token ? refreshed.claims() : null,
  };
  result.refreshed.userinfo = await step("userinfo after refresh", () =>
    client.fetchUserInfo(config, refreshed.access_token, claims.sub),
  );
  const narrowed = await step("refresh with a narrower scope", () =>
    client.refreshTokenGrant(config, refreshed.refresh_token, { scope: "openid email offline_access" }),
  );
  result.narrowed = { scope: narrowed.scope, userinfo: await client.fetchUserInfo(config, narrowed.access_token, claims.sub) };

  // Revocation of the refresh token ends the grant: refresh and its access token stop.
  await step("revocation", () => client.tokenRevocation(config, narrowed.refresh_token, { token_type_hint: "refresh_token" }));
  result.after_revocation = {
    refresh: await step("refresh after revocation", () => refused(() => client.refreshTokenGrant(config, narrowed.refresh_token))),
    userinfo: await step("userinfo after revocation", () =>
      refused(() => client.fetchUserInfo(config, narrowed.access_token, claims.sub)),
    ),
    introspection: await step("introspection after revocation", () => client.tokenIntrospection(config, narrowed.access_token)),
  };

  // RP-initiated logout: back to the registered address with the state; the provider's
  // session is over, so a silent login now answers login_required.
  const logoutState = client.randomState();
  const endSession = client.buildEndSessionUrl(config, {
    id_token_hint: silent.id_token,
    post_logout_redirect_uri: input.post_logout_redirect_uri,
    state: logoutState,
  });
  result.logout = await step("end session", async () => {
    const response = await fetch(endSession, { headers: { cookie: browser.cookie }, redirect: "manual" });
    const location = response.headers.get("location");
    return {
      status: response.status,
      location,
      state_matches: location ? new URL(location).searchParams.get("state") === logoutState : false,
      set_cookie: response.headers.getSetCookie(),
    };
  });
  result.after_logout = await step("prompt=none after logout", async () => {
    const afterState = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: input.redirect_uri,
      scope: "openid",
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: "S256",
      state: afterState,
      prompt: "none",
    });
    const back = await authorize(url, browser, {});
    const error = await refused(() =>
      client.authorizationCodeGrant(config, back, { pkceCodeVerifier: "x".repeat(43), expectedState: afterState }),
    );
    return { params: Object.fromEntries(back.searchParams), error };
  });

  result.ok = true;
}

try {
  await main();
} catch (error) {
  result.step = current;
  result.error = describe(error);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(result.ok ? 0 : 1);
