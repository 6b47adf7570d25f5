import { PasswordField } from "../shared/PasswordField";
import { MIN_PASSWORD_LENGTH } from "./validation";

type Props = {
  /** The form's `getInputProps`; the second field is always the form's `confirm`. */
  inputProps: (path: string) => object;
  name: string;
  label: string;
  confirmLabel: string;
};

/** A new password typed twice, with the rule the server applies said up front. */
export function NewPasswordFields({ inputProps, name, label, confirmLabel }: Props) {
  return (
    <>
      <PasswordField
        label={label}
        description={`At least ${MIN_PASSWORD_LENGTH} characters, not containing your name or email.`}
        autoComplete="new-password"
        required
        {...inputProps(name)}
      />
      <PasswordField label={confirmLabel} autoComplete="new-password" required {...inputProps("confirm")} />
    </>
  );
}
