import { Badge, Button, Group, Paper, Stack, Text, Title } from "@mantine/core";
import { type ReactNode, useState } from "react";
import type { MfaStatus } from "../api";
import { describeError } from "../errors";
import { formatDateTime } from "../format";
import { notifyFailure, notifySuccess } from "../notify";
import { confirmAction } from "../ui";
import { AddPasskey } from "./AddPasskey";
import { PasskeyList } from "./PasskeyList";
import { regenerateRecoveryCodes, removeTotp, useMfaChanged } from "./queries";
import { RecoveryCodesPanel } from "./RecoveryCodesPanel";
import { TotpSetup } from "./TotpSetup";

function Card({ title, children, aside }: { title: string; children: ReactNode; aside?: ReactNode }) {
  return (
    <Paper withBorder radius="md" p="lg" component="section" aria-label={title}>
      <Group justify="space-between" mb="sm" wrap="nowrap">
        <Title order={2} size="h4">
          {title}
        </Title>
        {aside}
      </Group>
      {children}
    </Paper>
  );
}

export function MfaBadge({ enabled }: { enabled: boolean }) {
  return (
    <Badge color={enabled ? "green" : "gray"} variant="light">
      {enabled ? "On" : "Off"}
    </Badge>
  );
}

/** The signed-in person's second factors and what they can do with them. */
export function SecuritySettings({ status }: { status: MfaStatus }) {
  const changed = useMfaChanged();
  const [panel, setPanel] = useState<"totp" | "passkey" | null>(null);
  const [codes, setCodes] = useState<string[]>([]);
  const [working, setWorking] = useState<"totp" | "codes" | null>(null);
  const close = () => setPanel(null);
  const totp = status.totp;

  async function run(which: "totp" | "codes", action: () => Promise<void>, failure: string) {
    setWorking(which);
    try {
      await action();
    } catch (error) {
      notifyFailure({ title: failure, message: describeError(error) });
    } finally {
      setWorking(null);
      await changed();
    }
  }

  const askRemoveTotp = () =>
    confirmAction({
      title: "Remove the authenticator app?",
      message: status.passkeys.length
        ? "Its codes will no longer log you in. Your passkeys and recovery codes still do."
        : "Its codes will no longer log you in, and two-factor authentication turns off.",
      confirmLabel: "Remove app",
      onConfirm: () =>
        void run(
          "totp",
          async () => {
            await removeTotp();
            notifySuccess({ message: "The authenticator app is removed." });
          },
          "The authenticator app was not removed",
        ),
    });

  const askNewCodes = () =>
    confirmAction({
      title: "Make new recovery codes?",
      message: "Your current recovery codes stop working at once, including any you have not used.",
      confirmLabel: "Make new codes",
      danger: false,
      onConfirm: () =>
        void run(
          "codes",
          async () => {
            setCodes(await regenerateRecoveryCodes());
          },
          "No new recovery codes were made",
        ),
    });

  return (
    <Stack gap="lg">
      <Card title="Two-factor authentication" aside={<MfaBadge enabled={status.enabled} />}>
        <Text size="sm">
          {status.enabled
            ? "Logging in needs your password and a second factor: a code from your authenticator app, a passkey, or a recovery code."
            : "Add a second factor, so a stolen password alone cannot open your account: an authenticator app, a passkey, or both."}
        </Text>
      </Card>

      <Card title="Authenticator app" aside={totp.enabled ? <MfaBadge enabled /> : undefined}>
        {panel === "totp" ? (
          <TotpSetup onCancel={close} onDone={close} onConfirmed={() => void changed()} />
        ) : totp.enabled ? (
          <Group justify="space-between" wrap="wrap">
            <Text size="sm">Set up {formatDateTime(totp.confirmed_at)}.</Text>
            <Button variant="light" color="red" onClick={askRemoveTotp} loading={working === "totp"}>
              Remove authenticator app
            </Button>
          </Group>
        ) : (
          <Group justify="space-between" wrap="wrap">
            <Text size="sm">A 6-digit code from an app on your phone, new every 30 seconds.</Text>
            <Button onClick={() => setPanel("totp")}>Set up authenticator app</Button>
          </Group>
        )}
      </Card>

      <Card title="Passkeys">
        <Stack>
          <Text size="sm">
            A passkey logs you in with your fingerprint, face, PIN or security key, with or without your password.
          </Text>
          <PasskeyList passkeys={status.passkeys} />
          {panel === "passkey" ? (
            <AddPasskey
              needsPassword={!status.enabled}
              onCancel={close}
              onDone={() => {
                close();
                notifySuccess({ message: "Your passkey is added." });
              }}
              onAdded={() => void changed()}
            />
          ) : (
            <Group>
              <Button variant="default" onClick={() => setPanel("passkey")}>
                Add a passkey
              </Button>
            </Group>
          )}
        </Stack>
      </Card>

      {(status.enabled || codes.length > 0) && (
        <Card title="Recovery codes">
          {codes.length ? (
            <RecoveryCodesPanel codes={codes} onDone={() => setCodes([])} />
          ) : (
            <Group justify="space-between" wrap="wrap">
              <Text size="sm">
                {status.recovery_codes_left === 1
                  ? "1 recovery code left."
                  : `${status.recovery_codes_left} recovery codes left.`}{" "}
                Each logs you in once if you lose your other factors.
              </Text>
              <Button variant="default" onClick={askNewCodes} loading={working === "codes"}>
                Make new recovery codes
              </Button>
            </Group>
          )}
        </Card>
      )}
    </Stack>
  );
}
