import { fieldErrors } from "../shared/errors";

type Settable = { setErrors: (errors: Record<string, string>) => void };

/**
 * Put a 400's messages on the form's own fields (the API's names may differ from the
 * form's: `renames` maps them). False when none of them is a field of this form, so the
 * caller shows the error as a whole instead of losing it.
 */
export function showFieldErrors(
  form: Settable,
  error: unknown,
  fields: readonly string[],
  renames: Record<string, string> = {},
): boolean {
  const errors: Record<string, string> = {};
  for (const [field, message] of Object.entries(fieldErrors(error))) {
    const name = renames[field] ?? field;
    if (fields.includes(name)) errors[name] = message;
  }
  if (!Object.keys(errors).length) return false;
  form.setErrors(errors);
  return true;
}
