import { Button, Group, Stack, Text } from "@mantine/core";
import { useState } from "react";
import { AddPasskey } from "./AddPasskey";
import { useMfaChanged } from "./queries";
import { TotpSetup } from "./TotpSetup";

/**
 * The first second factor, for someone whose role requires one: an authenticator app or
 * a passkey, then the recovery codes. `onEnrolled` once they are saved.
 */
export function MfaEnrolment({ onEnrolled }: { onEnrolled: () => void }) {
  const changed = useMfaChanged();
  const [choice, setChoice] = useState<"totp" | "passkey" | null>(null);
  const close = () => setChoice(null);

  if (choice === "totp") return <TotpSetup onCancel={close} onDone={onEnrolled} onConfirmed={() => void changed()} />;
  if (choice === "passkey") {
    return <AddPasskey needsPassword onCancel={close} onDone={onEnrolled} onAdded={() => void changed()} />;
  }
  return (
    <Stack>
      <Text>Choose your second factor. You can add the other one later.</Text>
      <Group>
        <Button onClick={() => setChoice("totp")}>Set up authenticator app</Button>
        <Button variant="default" onClick={() => setChoice("passkey")}>
          Add a passkey
        </Button>
      </Group>
    </Stack>
  );
}
