import { Alert, Anchor, Button, Code, Collapse, Group, Image, Stack, Text, TextInput } from "@mantine/core";
import { type FormEvent, useState } from "react";
import type { TotpEnrolment } from "../api";
import { ApiError, describeError, fieldErrors } from "../errors";
import { PasswordField } from "../PasswordField";
import { ErrorText } from "../ui";
import { confirmTotp, startTotp } from "./queries";
import { RecoveryCodesPanel } from "./RecoveryCodesPanel";

type Props = {
  /** After the codes were saved (or when none were made). */
  onDone: () => void;
  onCancel: () => void;
  /** Called as soon as the API confirmed the app: MFA is on from then on. */
  onConfirmed?: () => void;
};

const PASSWORD_CODES = new Set(["INVALID_CURRENT_PASSWORD", "REAUTHENTICATION_REQUIRED"]);

/**
 * The QR code arrives as SVG text. It is shown as an image (data: URL), never put into
 * the page as markup: an <img> runs no script and loads nothing, whatever the SVG holds.
 */
export function svgDataUrl(svg: string): string {
  const bytes = new TextEncoder().encode(svg);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `data:image/svg+xml;base64,${btoa(binary)}`;
}

/** "JBSWY3DPEHPK3PXP" as "JBSW Y3DP EHPK 3PXP", easier to type. */
function grouped(secret: string): string {
  return secret.replace(/(.{4})(?=.)/g, "$1 ");
}

/** Set up an authenticator app: the password, then the QR code and a first code, then the recovery codes. */
export function TotpSetup({ onDone, onCancel, onConfirmed }: Props) {
  const [step, setStep] = useState<"password" | "scan" | "codes">("password");
  const [password, setPassword] = useState("");
  const [passwordError, setPasswordError] = useState<string | null>(null);
  const [enrolment, setEnrolment] = useState<TotpEnrolment | null>(null);
  const [code, setCode] = useState("");
  const [codeError, setCodeError] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [showKey, setShowKey] = useState(false);
  const [codes, setCodes] = useState<string[]>([]);

  async function begin(event: FormEvent) {
    event.preventDefault();
    if (!password) {
      setPasswordError("Enter your current password");
      return;
    }
    setBusy(true);
    setError(null);
    setPasswordError(null);
    try {
      setEnrolment(await startTotp(password));
      setPassword("");
      setStep("scan");
    } catch (caught) {
      const field = fieldErrors(caught).current_password;
      if (caught instanceof ApiError && PASSWORD_CODES.has(caught.code)) setPasswordError(describeError(caught));
      else if (field) setPasswordError(field);
      else setError(caught);
    } finally {
      setBusy(false);
    }
  }

  async function confirm(event: FormEvent) {
    event.preventDefault();
    const value = code.replace(/\s/g, "");
    if (!/^\d{6}$/.test(value)) {
      setCodeError("Enter the 6 digits your authenticator app shows");
      return;
    }
    setBusy(true);
    setError(null);
    setCodeError(null);
    try {
      const made = await confirmTotp(value);
      onConfirmed?.();
      if (made.length) {
        setCodes(made);
        setStep("codes");
      } else {
        onDone();
      }
    } catch (caught) {
      if (caught instanceof ApiError && caught.code === "INVALID_MFA_CODE") {
        setCodeError("That code is not right. Check the time on your phone, and enter the newest code.");
        setCode("");
      } else if (caught instanceof ApiError && caught.code === "NO_PENDING_TOTP") {
        setStep("password");
        setEnrolment(null);
        setError(caught);
      } else {
        setError(caught);
      }
    } finally {
      setBusy(false);
    }
  }

  if (step === "codes") return <RecoveryCodesPanel codes={codes} onDone={onDone} />;

  if (step === "scan" && enrolment) {
    return (
      <form onSubmit={confirm} noValidate aria-label="Confirm your authenticator app">
        <Stack>
          <Text size="sm">
            Scan this QR code with your authenticator app (for example Aegis, Google Authenticator, 1Password or
            Microsoft Authenticator), then enter the code it shows.
          </Text>
          <Image
            src={svgDataUrl(enrolment.qr_svg)}
            alt="QR code for your authenticator app"
            w={200}
            h={200}
            fit="contain"
            bg="white"
          />
          <Anchor component="button" type="button" size="sm" onClick={() => setShowKey((shown) => !shown)}>
            Can't scan? Enter this key
          </Anchor>
          <Collapse in={showKey}>
            <Stack gap={4}>
              <Text size="sm">Type this key into the app (a time-based key):</Text>
              <Code fz="md">{grouped(enrolment.secret)}</Code>
            </Stack>
          </Collapse>
          <ErrorText error={error} />
          <TextInput
            label="Authentication code"
            description="The 6-digit code your authenticator app shows now."
            autoComplete="one-time-code"
            inputMode="numeric"
            maxLength={7}
            value={code}
            onChange={(event) => setCode(event.currentTarget.value)}
            error={codeError}
          />
          <Group justify="flex-end">
            <Button variant="default" onClick={onCancel} disabled={busy}>
              Cancel
            </Button>
            <Button type="submit" loading={busy}>
              Turn on
            </Button>
          </Group>
        </Stack>
      </form>
    );
  }

  return (
    <form onSubmit={begin} noValidate aria-label="Set up authenticator app">
      <Stack>
        <Text size="sm">Enter your password to start. You will then scan a QR code with the app.</Text>
        <ErrorText error={error} />
        {error instanceof ApiError && error.code === "MFA_ALREADY_ENABLED" && (
          <Alert color="gray" variant="light">
            To use another app, remove the current one first.
          </Alert>
        )}
        <PasswordField
          label="Current password"
          autoComplete="current-password"
          value={password}
          onChange={(event) => setPassword(event.currentTarget.value)}
          error={passwordError}
          required
        />
        <Group justify="flex-end">
          <Button variant="default" onClick={onCancel} disabled={busy}>
            Cancel
          </Button>
          <Button type="submit" loading={busy}>
            Continue
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
