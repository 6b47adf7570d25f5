import { Button, Stack, TextInput } from "@mantine/core";
import { useForm } from "@mantine/form";
import { useState } from "react";
import type { User } from "./api";
import { useAuth } from "./auth";
import { PasswordField } from "./PasswordField";
import { ErrorText } from "./ui";

type Props = {
  onLoggedIn?: (user: User) => void;
  submitLabel?: string;
};

export function LoginForm({ onLoggedIn, submitLabel = "Log in" }: Props) {
  const { login } = useAuth();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const form = useForm({
    initialValues: { email: "", password: "" },
    validate: {
      email: (value) => (/^\S+@\S+$/.test(value.trim()) ? null : "Enter your email address"),
      password: (value) => (value ? null : "Enter your password"),
    },
  });

  const submit = form.onSubmit(async (values) => {
    setBusy(true);
    setError(null);
    try {
      const user = await login({ email: values.email.trim(), password: values.password });
      onLoggedIn?.(user);
    } catch (caught) {
      setError(caught);
      form.setFieldValue("password", "");
    } finally {
      setBusy(false);
    }
  });

  return (
    <form onSubmit={submit} noValidate aria-label="Log in">
      <Stack>
        <ErrorText error={error} />
        <TextInput label="Email" type="email" autoComplete="username" required {...form.getInputProps("email")} />
        <PasswordField label="Password" autoComplete="current-password" required {...form.getInputProps("password")} />
        <Button type="submit" loading={busy}>
          {submitLabel}
        </Button>
      </Stack>
    </form>
  );
}
