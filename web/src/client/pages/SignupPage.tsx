import { Alert, Anchor, Button, Stack, Text, TextInput } from "@mantine/core";
import { useForm } from "@mantine/form";
import { useState } from "react";
import { Link } from "react-router";
import { ApiError, api, unwrap } from "../../shared/api";
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

/**
 * Registers, then logs in with the same credentials (registering alone does not).
 *
 * Sign-up answers the same whether or not the address already has an account (its owner
 * is mailed instead), so the login afterwards is what tells them apart: if it is refused,
 * the page says to check the inbox, and never that the address is taken.
 */
export function SignupForm() {
  const { login } = useAuth();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [registered, setRegistered] = useState(false);
  const [checkEmail, setCheckEmail] = useState<string | null>(null);
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
      if (caught instanceof ApiError && caught.code === "INVALID_CREDENTIALS") setCheckEmail(email);
      else setError(caught);
      setBusy(false);
    }
  });

  if (checkEmail) {
    return (
      <Stack>
        <Alert color="blue" title="Check your email" role="status" variant="light">
          <Text size="sm">
            We have sent an email to {checkEmail}. Follow it to continue. If you already have an account, log in or
            reset your password.
          </Text>
        </Alert>
        <Anchor component={Link} to="/login">
          Go to the login
        </Anchor>
        <Anchor component={Link} to="/forgot-password">
          Forgot your password?
        </Anchor>
      </Stack>
    );
  }

  return (
    <form onSubmit={submit} noValidate aria-label="Create your account">
      <Stack>
        <ErrorText error={error} title={registered ? "You could not be logged in" : undefined} />
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
