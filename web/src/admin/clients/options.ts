// What an admin chooses when registering a client, with a line on each choice
// (docs/oidc.md, "Clients"), and the form's values turned into the API's body.
import type { Schemas } from "../../shared/api";
import { ApiError } from "../../shared/errors";

export type Scope = Schemas["Scope"];
export type GrantType = Schemas["GrantType"];
export type ClientType = Schemas["ClientType"];

export const CLIENT_TYPES: { value: ClientType; label: string; description: string }[] = [
  { value: "confidential", label: "Confidential", description: "a server that keeps a secret" },
  { value: "public", label: "Public", description: "a browser or mobile app: no secret, PKCE only" },
];

export const SCOPES: { value: Scope; description: string }[] = [
  { value: "openid", description: "sign-in: an ID token with the user's id" },
  { value: "profile", description: "the user's name" },
  { value: "email", description: "the email address and whether it is verified" },
  { value: "offline_access", description: "a refresh token (needs the refresh_token grant)" },
  { value: "roles", description: "the user's Gatehouse role" },
];

export const GRANT_TYPES: { value: GrantType; description: string }[] = [
  { value: "authorization_code", description: "people log in through the browser (with PKCE)" },
  { value: "refresh_token", description: "keep access with refresh tokens (with authorization_code)" },
  { value: "client_credentials", description: "the application acts for itself (confidential clients only)" },
];

/** The form: lists of addresses are typed one a line. */
export type ClientValues = {
  name: string;
  type: ClientType;
  redirect_uris: string;
  post_logout_redirect_uris: string;
  scopes: string[];
  grant_types: string[];
  trusted: boolean;
  logo_url: string;
};

export const EMPTY_CLIENT: ClientValues = {
  name: "",
  type: "confidential",
  redirect_uris: "",
  post_logout_redirect_uris: "",
  scopes: ["openid", "profile", "email"],
  grant_types: ["authorization_code"],
  trusted: false,
  logo_url: "",
};

export function lines(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
}

export function valuesOf(client: Schemas["ClientRead"]): ClientValues {
  return {
    name: client.name,
    type: client.type,
    redirect_uris: client.redirect_uris.join("\n"),
    post_logout_redirect_uris: client.post_logout_redirect_uris.join("\n"),
    scopes: [...client.scopes],
    grant_types: [...client.grant_types],
    trusted: client.trusted,
    logo_url: client.logo_url ?? "",
  };
}

/** What the form can tell before asking the server; the server checks everything again. */
export function validateClient(values: ClientValues): Partial<Record<keyof ClientValues, string>> {
  const errors: Partial<Record<keyof ClientValues, string>> = {};
  if (!values.name.trim()) errors.name = "Enter a name";
  if (values.scopes.length === 0) errors.scopes = "Choose at least one scope";
  if (values.grant_types.length === 0) errors.grant_types = "Choose at least one grant type";
  if (values.grant_types.includes("authorization_code") && lines(values.redirect_uris).length === 0) {
    errors.redirect_uris = "Enter at least one redirect URI: the authorization_code grant sends people back to it";
  }
  if (values.type === "public" && values.grant_types.includes("client_credentials")) {
    errors.grant_types = "A public client cannot use client_credentials";
  }
  return errors;
}

export function createBody(values: ClientValues): Schemas["ClientCreate"] {
  return {
    name: values.name.trim(),
    type: values.type,
    redirect_uris: lines(values.redirect_uris),
    post_logout_redirect_uris: lines(values.post_logout_redirect_uris),
    scopes: values.scopes as Scope[],
    grant_types: values.grant_types as GrantType[],
    trusted: values.trusted,
    logo_url: values.logo_url.trim() || null,
  };
}

const same = (a: string[], b: string[]) => a.length === b.length && a.every((value, i) => value === b[i]);

/** Only what changed (the API wants at least one field); the type never changes. */
export function patchBody(client: Schemas["ClientRead"], values: ClientValues): Schemas["ClientPatch"] {
  const next = createBody(values);
  const patch: Schemas["ClientPatch"] = {};
  if (next.name !== client.name) patch.name = next.name;
  if (!same(next.redirect_uris ?? [], client.redirect_uris)) patch.redirect_uris = next.redirect_uris;
  if (!same(next.post_logout_redirect_uris ?? [], client.post_logout_redirect_uris)) {
    patch.post_logout_redirect_uris = next.post_logout_redirect_uris;
  }
  if (!same([...next.scopes].sort(), [...client.scopes].sort())) patch.scopes = next.scopes;
  if (!same([...next.grant_types].sort(), [...client.grant_types].sort())) patch.grant_types = next.grant_types;
  if (next.trusted !== client.trusted) patch.trusted = next.trusted;
  if ((next.logo_url ?? null) !== client.logo_url) patch.logo_url = next.logo_url ?? null;
  return patch;
}

const FIELDS = new Set<string>([
  "name",
  "type",
  "redirect_uris",
  "post_logout_redirect_uris",
  "scopes",
  "grant_types",
  "trusted",
  "logo_url",
]);

function sentence(messages: unknown): string {
  const text = Array.isArray(messages) ? messages.map(String).join("; ") : String(messages);
  const plain = text.replace(/^Value error, /, "");
  return plain.charAt(0).toUpperCase() + plain.slice(1);
}

/**
 * The refusal's messages on the form's fields: `redirect_uris.1` is the second line of
 * the redirect URIs, `scopes` the scopes. Anything else (`body`) is the form's own.
 */
export function clientFieldErrors(error: unknown): {
  fields: Partial<Record<keyof ClientValues, string>>;
  rest: string[];
} {
  const fields: Partial<Record<keyof ClientValues, string>> = {};
  const rest: string[] = [];
  if (!(error instanceof ApiError) || error.code !== "VALIDATION_ERROR") return { fields, rest };
  for (const [path, messages] of Object.entries(error.details)) {
    const parts = path.split(".").filter((part) => part !== "body");
    const field = parts.find((part) => FIELDS.has(part)) as keyof ClientValues | undefined;
    if (!field) {
      rest.push(sentence(messages));
      continue;
    }
    const index = parts[parts.indexOf(field) + 1];
    const isList = field === "redirect_uris" || field === "post_logout_redirect_uris";
    const where = index !== undefined && /^\d+$/.test(index) ? (isList ? `Line ${Number(index) + 1}: ` : "") : "";
    const text = `${where}${sentence(messages)}`;
    fields[field] = fields[field] ? `${fields[field]} ${text}` : text;
  }
  return { fields, rest };
}
