import { Alert, Anchor, Button, Stack, Text, TextInput } from "@mantine/core";
import { useForm } from "@mantine/form";
import { useState } from "react";
import { Link } from "react-router";
import { api, unwrap } from "../../shared/api";
import { ErrorText } from "../../shared/ui";
import { CenteredCard } from "../CenteredCard";
import { emailError } from "../validation";

export function ForgotPasswordPage() {
  const [sent, setSent] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const form = useForm({ initialValues: { email: "" }, validate: { email: emailError } });

  const submit = form.onSubmit(async ({ email }) => {
    setBusy(true);
    setError(null);
    try {
      await unwrap(api.POST("/api/v1/auth/password-reset/request", { body: { email: email.trim() } }));
      setSent(true);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  });

  const back = (
    <Anchor component={Link} to="/login" size="sm">
      Back to the login
    </Anchor>
  );

  return (
    <CenteredCard title="Forgot your password?" footer={back}>
      {sent ? (
        // The same words whether or not the address has an account: nothing to learn here.
        <Alert color="green" role="status" title="Check your inbox">
          If an account exists for that email, we sent a link to choose a new password. It works for one hour.
        </Alert>
      ) : (
        <form onSubmit={submit} noValidate aria-label="Ask for a password reset link">
          <Stack>
            <Text size="sm" c="dimmed">
              Enter the email you log in with and we will send you a link to choose a new password.
            </Text>
            <ErrorText error={error} />
            <TextInput label="Email" type="email" autoComplete="email" required {...form.getInputProps("email")} />
            <Button type="submit" loading={busy}>
              Send the link
            </Button>
          </Stack>
        </form>
      )}
    </CenteredCard>
  );
}
