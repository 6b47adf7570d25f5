import { Alert, Button, Divider, Stack, Switch, TextInput } from "@mantine/core";
import { type FormEvent, type ReactNode, useState } from "react";
import { describeError } from "../errors";
import { passkeysSupported } from "../webauthn";
import type { SecondFactor } from "./queries";

type Props = {
  /** What the API offered: "totp", "recovery_code", "webauthn". */
  methods: readonly string[];
  /** Resolves when the factor was accepted; a rejection is shown here. */
  onSubmit: (factor: SecondFactor) => Promise<void>;
  /** The form's accessible name. */
  label: string;
  submitLabel?: string;
  /** Shown above the fields (an explanation), and below the buttons (a way back). */
  intro?: ReactNode;
  footer?: ReactNode;
};

const SIX_DIGITS = /^\d{6}$/;

/**
 * A second factor: the authenticator app's code, a recovery code, or a passkey, as the
 * API offers them. Used by the login's second step and by the step-up modal.
 */
export function SecondFactorForm({ methods, onSubmit, label, submitLabel = "Verify", intro, footer }: Props) {
  const totp = methods.includes("totp");
  const recoveryOffered = methods.includes("recovery_code");
  const passkey = methods.includes("webauthn") && passkeysSupported();
  // With passkeys and recovery codes only, the recovery code is the typed way in.
  const [recovery, setRecovery] = useState(!totp && recoveryOffered);
  const typed = totp || recoveryOffered;
  const [code, setCode] = useState("");
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<"code" | "passkey" | null>(null);

  async function run(factor: SecondFactor, which: "code" | "passkey") {
    setBusy(which);
    setError(null);
    try {
      await onSubmit(factor);
    } catch (caught) {
      setError(caught);
      setCode("");
    } finally {
      setBusy(null);
    }
  }

  function submitCode(event: FormEvent) {
    event.preventDefault();
    const value = recovery ? code.trim().toLowerCase() : code.replace(/\s/g, "");
    if (!recovery && !SIX_DIGITS.test(value)) {
      setFieldError("Enter the 6 digits your authenticator app shows");
      return;
    }
    if (recovery && !value) {
      setFieldError("Enter one of your recovery codes");
      return;
    }
    setFieldError(null);
    void run({ method: recovery ? "recovery_code" : "totp", code: value }, "code");
  }

  return (
    <form onSubmit={submitCode} noValidate aria-label={label}>
      <Stack>
        {intro}
        {error ? (
          <Alert color="red" role="alert" variant="light">
            {describeError(error)}
          </Alert>
        ) : null}
        {typed && (
          <>
            {recovery ? (
              <TextInput
                key="recovery"
                label="Recovery code"
                description="One of the codes you saved when you set up two-factor authentication. Each works once."
                autoComplete="off"
                autoCapitalize="none"
                spellCheck={false}
                value={code}
                onChange={(event) => setCode(event.currentTarget.value)}
                error={fieldError}
                data-autofocus
              />
            ) : (
              <TextInput
                key="totp"
                label="Authentication code"
                description="The 6-digit code your authenticator app shows now."
                autoComplete="one-time-code"
                inputMode="numeric"
                maxLength={7}
                value={code}
                onChange={(event) => setCode(event.currentTarget.value)}
                error={fieldError}
                data-autofocus
              />
            )}
            {totp && recoveryOffered && (
              <Switch
                label="Use a recovery code"
                checked={recovery}
                onChange={(event) => {
                  setRecovery(event.currentTarget.checked);
                  setCode("");
                  setFieldError(null);
                }}
              />
            )}
            <Button type="submit" loading={busy === "code"} disabled={busy === "passkey"}>
              {submitLabel}
            </Button>
          </>
        )}
        {passkey && (
          <>
            {typed && <Divider label="or" labelPosition="center" />}
            <Button
              variant={typed ? "default" : "filled"}
              onClick={() => void run({ method: "webauthn" }, "passkey")}
              loading={busy === "passkey"}
              disabled={busy === "code"}
            >
              Use a passkey
            </Button>
          </>
        )}
        {!typed && !passkey && (
          <Alert color="orange" variant="light">
            This account's only second factor is a passkey, and this browser cannot use passkeys. Try a current browser,
            on an address served over HTTPS.
          </Alert>
        )}
        {footer}
      </Stack>
    </form>
  );
}
