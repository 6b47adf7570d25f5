import { Alert, Button, Stack, Text, TextInput } from "@mantine/core";
import { useForm } from "@mantine/form";
import { useState } from "react";
import { api, unwrap } from "../shared/api";
import { ErrorText } from "../shared/ui";
import { emailError } from "./validation";

/** Ask for a fresh confirmation link; the answer never tells whether the address is known. */
export function ResendVerification({ email = "" }: { email?: string }) {
  const [sent, setSent] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const form = useForm({ initialValues: { email }, validate: { email: emailError } });

  const submit = form.onSubmit(async (values) => {
    setBusy(true);
    setError(null);
    try {
      await unwrap(api.POST("/api/v1/auth/verify-email/request", { body: { email: values.email.trim() } }));
      setSent(true);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  });

  if (sent) {
    return (
      <Alert color="green" role="status">
        If that address belongs to an account still waiting for confirmation, we sent it a new link.
      </Alert>
    );
  }
  return (
    <form onSubmit={submit} noValidate aria-label="Send a new confirmation link">
      <Stack gap="sm">
        <Text size="sm">Send a new link to your address:</Text>
        <ErrorText error={error} />
        <TextInput label="Email" type="email" autoComplete="email" required {...form.getInputProps("email")} />
        <Button type="submit" variant="light" loading={busy}>
          Send a new link
        </Button>
      </Stack>
    </form>
  );
}
