import { Alert, Button, Group, Paper, Stack } from "@mantine/core";
import { useForm } from "@mantine/form";
import { useState } from "react";
import { api, unwrap } from "../../shared/api";
import { ApiError, describeError } from "../../shared/errors";
import { useSessionsChanged } from "../../shared/me";
import { PasswordField } from "../../shared/PasswordField";
import { ErrorText } from "../../shared/ui";
import { showFieldErrors } from "../forms";
import { NewPasswordFields } from "../NewPasswordFields";
import { PageHeader } from "../PageHeader";
import { confirmError, newPasswordError } from "../validation";

export function PasswordPage() {
  const sessionsChanged = useSessionsChanged();
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);
  const form = useForm({
    initialValues: { current_password: "", new_password: "", confirm: "" },
    validate: {
      current_password: (value) => (value ? null : "Enter your current password"),
      new_password: newPasswordError,
      confirm: (value, values) => confirmError(value, values.new_password),
    },
  });

  const submit = form.onSubmit(async (values) => {
    setBusy(true);
    setError(null);
    setDone(false);
    try {
      await unwrap(
        api.POST("/api/v1/users/me/password", {
          body: { current_password: values.current_password, new_password: values.new_password },
        }),
      );
      form.reset();
      // The API ends the other sessions and keeps this one (docs/api.md); had it ended
      // this one, the next request's refusal would take the person to the login.
      setDone(true);
      void sessionsChanged();
    } catch (caught) {
      if (caught instanceof ApiError && caught.code === "INVALID_CURRENT_PASSWORD") {
        form.setFieldError("current_password", describeError(caught));
      } else if (!showFieldErrors(form, caught, ["current_password", "new_password"])) {
        setError(caught);
      }
    } finally {
      setBusy(false);
    }
  });

  return (
    <>
      <PageHeader
        title="Change your password"
        description="After the change, every other device you are logged in on is logged out. This one stays logged in."
      />
      <Paper withBorder radius="md" p="lg" maw={520}>
        <form onSubmit={submit} noValidate aria-label="Change your password">
          <Stack>
            {done && (
              <Alert color="green" title="Password changed" role="status">
                Your password has been changed, and your other sessions have been ended.
              </Alert>
            )}
            <ErrorText error={error} />
            <PasswordField
              label="Current password"
              autoComplete="current-password"
              required
              {...form.getInputProps("current_password")}
            />
            <NewPasswordFields
              inputProps={form.getInputProps}
              name="new_password"
              label="New password"
              confirmLabel="Confirm new password"
            />
            <Group justify="flex-end">
              <Button type="submit" loading={busy}>
                Change password
              </Button>
            </Group>
          </Stack>
        </form>
      </Paper>
    </>
  );
}
