import { Button, Group, Loader, SimpleGrid, Stack, Text } from "@mantine/core";
import type { User } from "../../shared/api";
import { Field } from "../../shared/Field";
import { formatDateTime } from "../../shared/format";
import { PasskeyFacts } from "../../shared/mfa/PasskeyList";
import { MfaBadge } from "../../shared/mfa/SecuritySettings";
import { notifySuccess } from "../../shared/notify";
import { confirmAction, ErrorText } from "../../shared/ui";
import { useResetUserMfa, useUserMfa } from "./queries";

type Props = { user: User; canWrite: boolean; isSelf: boolean };

/** The user's second factors as the API lists them; admins can remove them all. */
export function UserMfa({ user, canWrite, isSelf }: Props) {
  const mfa = useUserMfa(user.id);
  const reset = useResetUserMfa(user.id, {
    onSuccess: () =>
      notifySuccess({
        message: `Every second factor of ${user.name} is removed; they are logged out everywhere and mailed.`,
      }),
  });

  if (mfa.isPending) return <Loader size="sm" aria-label="Loading two-factor authentication" />;
  if (mfa.isError) return <ErrorText error={mfa.error} />;
  const status = mfa.data;

  const askReset = () =>
    confirmAction({
      title: "Reset two-factor authentication",
      message: isSelf
        ? "This removes your own authenticator app, passkeys and recovery codes, and logs you out everywhere."
        : `Remove every second factor of ${user.name} (authenticator app, passkeys, recovery codes)? They are logged out everywhere and mailed. Do this only after checking who is asking, for example by phone.`,
      confirmLabel: "Reset MFA",
      onConfirm: () => reset.mutate(),
    });

  return (
    <Stack gap="sm">
      <ErrorText error={reset.error} />
      <SimpleGrid cols={{ base: 1, xs: 2, md: 4 }} spacing="md">
        <Field label="Status">
          <Group gap="xs">
            <MfaBadge enabled={status.enabled} />
            {status.required && <Text size="sm">required by role</Text>}
          </Group>
        </Field>
        <Field label="Authenticator app">
          {status.totp.enabled ? `Set up ${formatDateTime(status.totp.confirmed_at)}` : "None"}
        </Field>
        <Field label="Recovery codes left">{status.recovery_codes_left}</Field>
        <Field label="Passkeys">{status.passkeys.length}</Field>
      </SimpleGrid>
      {status.passkeys.length > 0 && (
        <Stack gap="xs" component="ul" p={0} m={0} style={{ listStyle: "none" }} aria-label="Passkeys">
          {status.passkeys.map((passkey) => (
            <li key={passkey.id}>
              <PasskeyFacts passkey={passkey} />
            </li>
          ))}
        </Stack>
      )}
      {canWrite && status.enabled && (
        <Group>
          <Button color="red" variant="light" onClick={askReset} loading={reset.isPending}>
            Reset MFA
          </Button>
        </Group>
      )}
    </Stack>
  );
}
