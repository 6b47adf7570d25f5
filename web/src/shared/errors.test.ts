import { describe, expect, it } from "vitest";
import {
  ApiError,
  apiErrorFrom,
  describeError,
  describeWait,
  fieldErrors,
  NetworkError,
  parseRetryAfter,
} from "./errors";

const envelope = (code: string, message = "", details: Record<string, unknown> = {}) => ({
  error: { code, message, details, timestamp: "2026-01-01T00:00:00Z", request_id: "r1" },
});

describe("describeError", () => {
  it("says how long to wait after too many attempts", async () => {
    const response = new Response(JSON.stringify(envelope("RATE_LIMITED", "Too many")), {
      status: 429,
      headers: { "Retry-After": "125" },
    });
    const error = await apiErrorFrom(response);
    expect(error.retryAfter).toBe(125);
    expect(describeError(error)).toBe("Too many attempts. Try again in 3 minutes.");
  });

  it("speaks in seconds under a minute and in the singular for one", () => {
    expect(describeError(new ApiError(429, envelope("RATE_LIMITED").error, 1))).toBe(
      "Too many attempts. Try again in 1 second.",
    );
    expect(describeWait(45)).toBe("45 seconds");
    expect(describeWait(60)).toBe("1 minute");
    expect(describeWait(61)).toBe("2 minutes");
  });

  it("maps known codes to plain sentences", () => {
    expect(describeError(new ApiError(401, envelope("INVALID_CREDENTIALS").error))).toMatch(/do not match/);
    expect(describeError(new ApiError(409, envelope("LAST_ADMIN").error))).toMatch(/last admin/);
    expect(describeError(new ApiError(409, envelope("VERSION_CONFLICT").error))).toMatch(/Reload/);
  });

  it("uses the first field message of a validation error", () => {
    const error = new ApiError(
      400,
      envelope("VALIDATION_ERROR", "Invalid input", { email: ["Email already exists"] }).error,
    );
    expect(describeError(error)).toBe("Email already exists");
  });

  it("counts the attempts left after a wrong second factor", () => {
    const wrong = (details: Record<string, unknown>) =>
      new ApiError(401, envelope("INVALID_MFA_CODE", "", details).error);
    expect(describeError(wrong({ attempts_left: 3 }))).toBe("That code is not right. 3 attempts left.");
    expect(describeError(wrong({ attempts_left: 1 }))).toBe("That code is not right. 1 attempt left.");
    expect(describeError(wrong({ attempts_left: 0 }))).toMatch(/No attempts left: log in again/);
    expect(describeError(wrong({}))).toBe("That code is not right.");
  });

  it("explains a passkey prompt the browser ended", () => {
    expect(describeError(new DOMException("x", "NotAllowedError"))).toMatch(/closed or timed out/);
    expect(describeError(new DOMException("x", "InvalidStateError"))).toMatch(/already holds a passkey/);
  });

  it("never shows a raw server failure", () => {
    expect(describeError(new ApiError(500, null))).toMatch(/went wrong on our side/);
    expect(describeError(new Error("TypeError: x is undefined"))).toBe("Something went wrong. Please try again.");
    expect(describeError(new NetworkError())).toMatch(/could not be reached/);
  });

  it("reads a body that is not an envelope without failing", async () => {
    const error = await apiErrorFrom(new Response("<html>bad gateway</html>", { status: 502 }));
    expect(error.code).toBe("INTERNAL_ERROR");
    expect(describeError(error)).toMatch(/on our side/);
  });
});

describe("fieldErrors", () => {
  it("maps field paths to the last segment, one sentence each", () => {
    const error = new ApiError(
      400,
      envelope("VALIDATION_ERROR", "Invalid input", {
        "body.email": ["value is not a valid email address: An email address must have an @-sign."],
        password: ["Password must be at least 8 characters"],
      }).error,
    );
    expect(fieldErrors(error)).toEqual({
      email: "Enter a valid email address.",
      password: "Password must be at least 8 characters",
    });
  });

  it("is empty for anything but an API error", () => {
    expect(fieldErrors(new Error("x"))).toEqual({});
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("30")).toBe(30);
    expect(parseRetryAfter(new Date(10_000 + 90_000).toUTCString(), 10_000)).toBe(90);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("soon")).toBeNull();
  });
});
