import { describe, expect, it } from "vitest";
import { canReadAudit, canUsePortal, canWrite } from "./permissions";

describe("who may do what in the portal", () => {
  it("lets admins and readonly admins in, not plain users", () => {
    expect(canUsePortal("admin")).toBe(true);
    expect(canUsePortal("readonly")).toBe(true);
    expect(canUsePortal("user")).toBe(false);
    expect(canUsePortal(null)).toBe(false);
  });

  it("gives write controls and the audit trail to admins only", () => {
    expect(canWrite("admin")).toBe(true);
    expect(canWrite("readonly")).toBe(false);
    expect(canWrite("user")).toBe(false);
    expect(canReadAudit("admin")).toBe(true);
    expect(canReadAudit("readonly")).toBe(false);
  });
});
