import { PasswordInput, type PasswordInputProps } from "@mantine/core";

/** Mantine's password input with a named show/hide button (its icon alone has no label). */
export function PasswordField(props: PasswordInputProps) {
  return <PasswordInput visibilityToggleButtonProps={{ "aria-label": "Show or hide the password" }} {...props} />;
}
