import { Anchor, Button, Stack, TextInput } from "@mantine/core";
import { useForm } from "@mantine/form";
import { useState } from "react";
import { Link } from "react-router";
import { api, unwrap } from "../../shared/api";
import { useAuth } from "../../shared/auth";
import { ErrorText } from "../../shared/ui";
import { CenteredCard } from "../CenteredCard";
import { showFieldErrors } from "../forms";
import { NewPasswordFields } from "../NewPasswordFields";
import { confirmError, emailError, nameError, newPasswordError } from "../validation";

export function SignupPage() {
  return (
    <CenteredCard
      title="Create your account"
      footer={
        <>
          Already have an account?{" "}
          <Anchor component={Link} to="/login" size="sm">
            Log in
          </Anchor>
        </>
      }
    >
      <SignupForm />
    </CenteredCard>
  );
}

/** Registers, then logs in with the same credentials (registering alone does not). */
export function SignupForm() {
  const { login } = useAuth();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [registered, setRegistered] = useState(false);
  const form = useForm({
    initialValues: { name: "", email: "", password: "", confirm: "" },
    validate: {
      name: nameError,
      email: emailError,
      password: newPasswordError,
      confirm: (value, values) => confirmError(value, values.password),
    },
  });

  const submit = form.onSubmit(async (values) => {
    setBusy(true);
    setError(null);
    const email = values.email.trim();
    try {
      await unwrap(
        api.POST("/api/v1/auth/register", { body: { name: values.name.trim(), email, password: values.password } }),
      );
    } catch (caught) {
      if (!showFieldErrors(form, caught, ["name", "email", "password"])) setError(caught);
      setBusy(false);
      return;
    }
    setRegistered(true);
    try {
      // Signed in, the public-only route moves on to the profile by itself.
      await login({ email, password: values.password });
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  });

  return (
    <form onSubmit={submit} noValidate aria-label="Create your account">
      <Stack>
        <ErrorText
          error={error}
          title={registered ? "Your account was created, but you could not be logged in" : undefined}
        />
        {registered && error ? (
          <Anchor component={Link} to="/login">
            Go to the login
          </Anchor>
        ) : null}
        <TextInput label="Name" autoComplete="name" required {...form.getInputProps("name")} />
        <TextInput label="Email" type="email" autoComplete="email" required {...form.getInputProps("email")} />
        <NewPasswordFields
          inputProps={form.getInputProps}
          name="password"
          label="Password"
          confirmLabel="Confirm password"
        />
        <Button type="submit" loading={busy}>
          Create account
        </Button>
      </Stack>
    </form>
  );
}
