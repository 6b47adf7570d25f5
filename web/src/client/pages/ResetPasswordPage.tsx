import { Alert, Anchor, Button, Stack } from "@mantine/core";
import { useForm } from "@mantine/form";
import { useState } from "react";
import { Link } from "react-router";
import { api, session, unwrap } from "../../shared/api";
import { ErrorText } from "../../shared/ui";
import { CenteredCard } from "../CenteredCard";
import { showFieldErrors } from "../forms";
import { useLinkToken } from "../linkToken";
import { NewPasswordFields } from "../NewPasswordFields";
import { confirmError, newPasswordError } from "../validation";

export function ResetPasswordPage() {
  const token = useLinkToken();
  const [done, setDone] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const form = useForm({
    initialValues: { new_password: "", confirm: "" },
    validate: {
      new_password: newPasswordError,
      confirm: (value, values) => confirmError(value, values.new_password),
    },
  });

  const submit = form.onSubmit(async (values) => {
    if (!token) return;
    setBusy(true);
    setError(null);
    try {
      await unwrap(api.POST("/api/v1/auth/password-reset", { body: { token, new_password: values.new_password } }));
      // Every session of the account has ended, this browser's included.
      session.clear();
      setDone(true);
    } catch (caught) {
      // A refused password leaves the link usable: the person tries a better one.
      if (!showFieldErrors(form, caught, ["new_password"])) setError(caught);
    } finally {
      setBusy(false);
    }
  });

  if (!token) {
    return (
      <CenteredCard title="Choose a new password">
        <Alert color="red" role="alert">
          This link is incomplete. Open the link from the email again, or ask for a new one.
        </Alert>
        <Anchor component={Link} to="/forgot-password">
          Ask for a new link
        </Anchor>
      </CenteredCard>
    );
  }

  if (done) {
    return (
      <CenteredCard title="Password changed">
        <Alert color="green" role="status">
          Your new password is set. You have been logged out everywhere; log in with the new password.
        </Alert>
        <Button component={Link} to="/login">
          Log in
        </Button>
      </CenteredCard>
    );
  }

  return (
    <CenteredCard title="Choose a new password">
      <form onSubmit={submit} noValidate aria-label="Choose a new password">
        <Stack>
          <ErrorText error={error} />
          {error ? (
            <Anchor component={Link} to="/forgot-password" size="sm">
              Ask for a new link
            </Anchor>
          ) : null}
          <NewPasswordFields
            inputProps={form.getInputProps}
            name="new_password"
            label="New password"
            confirmLabel="Confirm new password"
          />
          <Button type="submit" loading={busy}>
            Set the new password
          </Button>
        </Stack>
      </form>
    </CenteredCard>
  );
}
