import { Alert, Button, Divider, Stack, Text, TextInput } from "@mantine/core";
import { useForm } from "@mantine/form";
import { useState } from "react";
import { api, type User, unwrap } from "./api";
import { useAuth } from "./auth";
import { ApiError } from "./errors";
import type { SecondFactor } from "./mfa/queries";
import { SecondFactorForm } from "./mfa/SecondFactorForm";
import { PasswordField } from "./PasswordField";
import { ErrorText } from "./ui";
import { passkeysSupported, signChallenge } from "./webauthn";

type Props = {
  onLoggedIn?: (user: User) => void;
  submitLabel?: string;
  /** The email to start with (an application's login_hint). */
  initialEmail?: string;
};

/** What a right password answers for an account with MFA (401 MFA_REQUIRED's details). */
type MfaChallenge = { mfaToken: string; methods: string[] };

function mfaChallenge(error: unknown): MfaChallenge | null {
  if (!(error instanceof ApiError) || error.code !== "MFA_REQUIRED") return null;
  const { mfa_token: token, methods } = error.details;
  if (typeof token !== "string") return null;
  return { mfaToken: token, methods: Array.isArray(methods) ? methods.map(String) : ["totp", "recovery_code"] };
}

type AsCredential = Record<string, unknown>;

/**
 * The login of both apps: email and password; then, for an account with MFA, a second
 * step (a code, a recovery code or a passkey). A passkey alone also logs in.
 */
export function LoginForm({ onLoggedIn, submitLabel = "Log in", initialEmail = "" }: Props) {
  const { login, verifyMfa, passkeyLogin } = useAuth();
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState<"password" | "passkey" | null>(null);
  const [challenge, setChallenge] = useState<MfaChallenge | null>(null);
  const form = useForm({
    initialValues: { email: initialEmail, password: "" },
    validate: {
      email: (value) => (/^\S+@\S+$/.test(value.trim()) ? null : "Enter your email address"),
      password: (value) => (value ? null : "Enter your password"),
    },
  });

  const submit = form.onSubmit(async (values) => {
    setBusy("password");
    setError(null);
    setNotice(null);
    try {
      const user = await login({ email: values.email.trim(), password: values.password });
      onLoggedIn?.(user);
    } catch (caught) {
      const next = mfaChallenge(caught);
      if (next) setChallenge(next);
      else setError(caught);
      form.setFieldValue("password", "");
    } finally {
      setBusy(null);
    }
  });

  function backToPassword(message: string | null) {
    setChallenge(null);
    setError(null);
    setNotice(message);
  }

  async function secondFactor(factor: SecondFactor) {
    if (!challenge) return;
    const mfa_token = challenge.mfaToken;
    try {
      let user: User;
      if (factor.method === "webauthn") {
        const { challenge_id, options } = await unwrap(
          api.POST("/api/v1/auth/passkey/options", { body: { mfa_token } }),
        );
        const credential = (await signChallenge(options)) as unknown as AsCredential;
        user = await verifyMfa({ mfa_token, method: "webauthn", challenge_id, credential });
      } else {
        user = await verifyMfa({ mfa_token, method: factor.method, code: factor.code });
      }
      onLoggedIn?.(user);
    } catch (caught) {
      // The mfa_token is spent (used, expired or too many wrong codes): only a new login helps.
      if (caught instanceof ApiError && caught.code === "MFA_TOKEN_INVALID") {
        backToPassword("Your login was not finished in time, or had too many wrong codes. Log in again.");
        return;
      }
      throw caught;
    }
  }

  async function signInWithPasskey() {
    setBusy("passkey");
    setError(null);
    setNotice(null);
    try {
      const { challenge_id, options } = await unwrap(api.POST("/api/v1/auth/passkey/options", { body: {} }));
      const credential = await signChallenge(options);
      const user = await passkeyLogin({ challenge_id, credential });
      onLoggedIn?.(user);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(null);
    }
  }

  if (challenge) {
    return (
      <SecondFactorForm
        label="Two-factor authentication"
        methods={challenge.methods}
        submitLabel={submitLabel}
        onSubmit={secondFactor}
        intro={
          <Text size="sm">
            Your password was right. Now prove it is you with your second factor
            {challenge.methods.includes("totp") ? ": the code your authenticator app shows." : "."}
          </Text>
        }
        footer={
          <Button variant="subtle" onClick={() => backToPassword(null)}>
            Back to email and password
          </Button>
        }
      />
    );
  }

  return (
    <Stack>
      <form onSubmit={submit} noValidate aria-label="Log in">
        <Stack>
          {notice && (
            <Alert color="orange" role="status" variant="light">
              {notice}
            </Alert>
          )}
          <ErrorText error={error} />
          <TextInput label="Email" type="email" autoComplete="username" required {...form.getInputProps("email")} />
          <PasswordField
            label="Password"
            autoComplete="current-password"
            required
            {...form.getInputProps("password")}
          />
          <Button type="submit" loading={busy === "password"} disabled={busy === "passkey"}>
            {submitLabel}
          </Button>
        </Stack>
      </form>
      {passkeysSupported() && (
        <>
          <Divider label="or" labelPosition="center" />
          <Button
            variant="default"
            onClick={() => void signInWithPasskey()}
            loading={busy === "passkey"}
            disabled={busy === "password"}
          >
            Sign in with a passkey
          </Button>
        </>
      )}
    </Stack>
  );
}
