import { Button, Group, Stack, Text, TextInput } from "@mantine/core";
import { type FormEvent, useState } from "react";
import { ApiError, describeError, fieldErrors } from "../errors";
import { describeAgent } from "../format";
import { PasswordField } from "../PasswordField";
import { ErrorText } from "../ui";
import { passkeysSupported } from "../webauthn";
import { addPasskey } from "./queries";
import { RecoveryCodesPanel } from "./RecoveryCodesPanel";

type Props = {
  /** MFA is still off: the API wants the current password instead of a step-up. */
  needsPassword: boolean;
  onDone: () => void;
  onCancel: () => void;
  /** As soon as the API registered the passkey. */
  onAdded?: () => void;
};

const PASSWORD_CODES = new Set(["INVALID_CURRENT_PASSWORD", "REAUTHENTICATION_REQUIRED"]);

/** Name a new passkey, let the browser make it, register it; the recovery codes if it turned MFA on. */
export function AddPasskey({ needsPassword, onDone, onCancel, onAdded }: Props) {
  const [name, setName] = useState(() => describeAgent(navigator.userAgent));
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<{ name?: string; password?: string }>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [codes, setCodes] = useState<string[]>([]);

  if (!passkeysSupported()) {
    return (
      <Stack>
        <Text size="sm">
          This browser cannot make passkeys. Try a current browser, on an address served over HTTPS.
        </Text>
        <Group justify="flex-end">
          <Button variant="default" onClick={onCancel}>
            Close
          </Button>
        </Group>
      </Stack>
    );
  }

  if (codes.length) return <RecoveryCodesPanel codes={codes} onDone={onDone} />;

  async function submit(event: FormEvent) {
    event.preventDefault();
    const wanted = name.trim();
    const missing = {
      name: wanted ? undefined : "Give the passkey a name",
      password: needsPassword && !password ? "Enter your current password" : undefined,
    };
    setErrors(missing);
    if (missing.name || missing.password) return;
    setBusy(true);
    setError(null);
    try {
      const added = await addPasskey(wanted, needsPassword ? password : undefined);
      onAdded?.();
      if (added.recoveryCodes.length) setCodes(added.recoveryCodes);
      else onDone();
    } catch (caught) {
      const fields = fieldErrors(caught);
      if (caught instanceof ApiError && PASSWORD_CODES.has(caught.code)) {
        setErrors({ password: describeError(caught) });
      } else if (fields.current_password || fields.name) {
        setErrors({ password: fields.current_password, name: fields.name });
      } else {
        setError(caught);
      }
    } finally {
      setBusy(false);
      setPassword("");
    }
  }

  return (
    <form onSubmit={submit} noValidate aria-label="Add a passkey">
      <Stack>
        <Text size="sm">
          A passkey lives in this device, your phone, a security key or your password manager. Your browser asks which.
        </Text>
        <ErrorText error={error} />
        <TextInput
          label="Passkey name"
          description="So you can tell your passkeys apart."
          value={name}
          maxLength={100}
          onChange={(event) => setName(event.currentTarget.value)}
          error={errors.name}
          required
        />
        {needsPassword && (
          <PasswordField
            label="Current password"
            autoComplete="current-password"
            value={password}
            onChange={(event) => setPassword(event.currentTarget.value)}
            error={errors.password}
            required
          />
        )}
        <Group justify="flex-end">
          <Button variant="default" onClick={onCancel} disabled={busy}>
            Cancel
          </Button>
          <Button type="submit" loading={busy}>
            Create the passkey
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
