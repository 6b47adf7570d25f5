import { describe, expect, it } from "vitest";
import { describeEventTypes, toEventTypes } from "./eventTypes";

describe("webhook event types", () => {
  it("send * alone when every type is chosen, and nothing when none is", () => {
    expect(toEventTypes(["*", "user.created"])).toEqual(["*"]);
    expect(toEventTypes(["user.created", "user.deleted"])).toEqual(["user.created", "user.deleted"]);
    expect(toEventTypes([])).toBeNull();
  });

  it("read as words", () => {
    expect(describeEventTypes(["*"])).toBe("Every event type");
    expect(describeEventTypes(["user.created", "user.deleted"])).toBe("user.created, user.deleted");
  });
});
