import { confirmError, emailError, exportFilename, initials, newPasswordError, profileChanges } from "./validation";

const user = { name: "Jane Doe", email: "jane@example.com" };

describe("profileChanges", () => {
  it("sends nothing when nothing changed", () => {
    expect(profileChanges(user, { name: "Jane Doe", email: "jane@example.com", current_password: "" })).toBeNull();
  });

  it("sends only the name when only the name changed", () => {
    expect(profileChanges(user, { name: "  Jane Smith ", email: "jane@example.com", current_password: "x" })).toEqual({
      name: "Jane Smith",
    });
  });

  it("treats the same address in other case or with spaces as unchanged", () => {
    expect(profileChanges(user, { name: "Jane Doe", email: " Jane@Example.COM ", current_password: "" })).toBeNull();
  });

  it("sends a new email together with the current password", () => {
    expect(profileChanges(user, { name: "Jane Doe", email: "j@example.org", current_password: "old secret" })).toEqual({
      email: "j@example.org",
      current_password: "old secret",
    });
  });
});

describe("field checks", () => {
  it("wants an email shaped like one", () => {
    expect(emailError("")).toBe("Enter your email address");
    expect(emailError("jane")).toBe("Enter a valid email address");
    expect(emailError("jane@example")).toBe("Enter a valid email address");
    expect(emailError(" jane@example.com ")).toBeNull();
  });

  it("wants a password of at least 8 characters", () => {
    expect(newPasswordError("")).toBe("Choose a password");
    expect(newPasswordError("1234567")).toBe("Use at least 8 characters");
    expect(newPasswordError("12345678")).toBeNull();
  });

  it("wants the confirmation to equal the password exactly", () => {
    expect(confirmError("Maple river", "maple river")).toBe("The passwords do not match");
    expect(confirmError("", "maple river")).toBe("Enter the password again");
    expect(confirmError("maple river", "maple river")).toBeNull();
  });
});

it("names the export after the local date", () => {
  expect(exportFilename(new Date(2026, 0, 5, 23, 59))).toBe("gatehouse-data-2026-01-05.json");
});

it("makes avatar letters from the first and last name", () => {
  expect(initials("jane van der Berg")).toBe("JB");
  expect(initials("Cher")).toBe("C");
  expect(initials("  ")).toBe("?");
});
