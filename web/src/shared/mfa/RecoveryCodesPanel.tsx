import { Alert, Button, Checkbox, Code, Group, SimpleGrid, Stack } from "@mantine/core";
import { useState } from "react";
import { downloadText } from "../api";
import { notifyFailure, notifySuccess } from "../notify";

type Props = { codes: string[]; onDone: () => void };

/**
 * Recovery codes, shown once: the API keeps only their hashes, so once this closes
 * nobody can show them again. Closing needs the person to say they saved them.
 */
export function RecoveryCodesPanel({ codes, onDone }: Props) {
  const [saved, setSaved] = useState(false);
  const text = `Gatehouse recovery codes (each works once)\n\n${codes.join("\n")}\n`;

  async function copy() {
    try {
      await navigator.clipboard.writeText(text);
      notifySuccess({ message: "The recovery codes are copied." });
    } catch {
      notifyFailure({ message: "This browser did not let the page copy. Download them instead." });
    }
  }

  return (
    <Stack component="section" aria-label="Your recovery codes">
      <Alert color="yellow" variant="light" title="Save your recovery codes now">
        If you lose your authenticator app or passkey, each of these codes lets you log in once. Keep them somewhere
        safe, like a password manager. They are shown only this once.
      </Alert>
      <SimpleGrid
        cols={2}
        spacing="xs"
        component="ul"
        p={0}
        m={0}
        style={{ listStyle: "none" }}
        aria-label="Recovery codes"
      >
        {codes.map((code) => (
          <li key={code}>
            <Code fz="md">{code}</Code>
          </li>
        ))}
      </SimpleGrid>
      <Group>
        <Button variant="default" onClick={() => void copy()}>
          Copy
        </Button>
        <Button variant="default" onClick={() => downloadText(text, "gatehouse-recovery-codes.txt")}>
          Download (.txt)
        </Button>
      </Group>
      <Checkbox label="I saved them" checked={saved} onChange={(event) => setSaved(event.currentTarget.checked)} />
      <Group justify="flex-end">
        <Button onClick={onDone} disabled={!saved}>
          Done
        </Button>
      </Group>
    </Stack>
  );
}
