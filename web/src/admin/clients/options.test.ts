import { describe, expect, it } from "vitest";
import { ApiError } from "../../shared/errors";
import { clientFieldErrors, createBody, EMPTY_CLIENT, patchBody, validateClient, valuesOf } from "./options";

const client = {
  id: "8c1e4b2a-7d3f-4a5e-9b6c-0d1e2f3a4b5c",
  client_id: "gh_abc",
  name: "Acme CRM",
  type: "confidential" as const,
  redirect_uris: ["https://crm.example.com/callback"],
  post_logout_redirect_uris: [],
  scopes: ["openid" as const, "email" as const],
  grant_types: ["authorization_code" as const],
  trusted: false,
  logo_url: "https://crm.example.com/logo.png",
  enabled: true,
  secret_rotated_at: null,
  created_at: "2026-01-15T10:30:00Z",
  updated_at: "2026-01-15T10:30:00Z",
  created_by: null,
};

describe("a client's form", () => {
  it("sends nothing but what changed; an emptied logo is null", () => {
    expect(patchBody(client, valuesOf(client))).toEqual({});
    const reordered = { ...valuesOf(client), scopes: ["email", "openid"] };
    expect(patchBody(client, reordered)).toEqual({});
    expect(patchBody(client, { ...valuesOf(client), logo_url: " " })).toEqual({ logo_url: null });
    expect(
      patchBody(client, { ...valuesOf(client), redirect_uris: "https://a.example/cb\nhttps://b.example/cb" }),
    ).toEqual({
      redirect_uris: ["https://a.example/cb", "https://b.example/cb"],
    });
  });

  it("refuses what the API would, before asking it", () => {
    expect(validateClient({ ...EMPTY_CLIENT, name: "A", redirect_uris: "https://a.example/cb" })).toEqual({});
    expect(validateClient({ ...EMPTY_CLIENT, name: "A", type: "public", grant_types: ["client_credentials"] })).toEqual(
      {
        grant_types: "A public client cannot use client_credentials",
      },
    );
    expect(createBody({ ...EMPTY_CLIENT, name: " A ", logo_url: "" })).toMatchObject({ name: "A", logo_url: null });
  });

  it("puts the API's refusals on the fields, a list's item by its line", () => {
    const error = new ApiError(400, {
      code: "VALIDATION_ERROR",
      message: "Invalid",
      details: {
        "redirect_uris.0": ["must not contain a fragment (#)"],
        "body.logo_url": ["Value error, must use https"],
        body: ["give at least one of name"],
      },
    });
    expect(clientFieldErrors(error)).toEqual({
      fields: { redirect_uris: "Line 1: Must not contain a fragment (#)", logo_url: "Must use https" },
      rest: ["Give at least one of name"],
    });
    expect(clientFieldErrors(new ApiError(409, { code: "VERSION_CONFLICT", message: "x", details: {} }))).toEqual({
      fields: {},
      rest: [],
    });
  });
});
