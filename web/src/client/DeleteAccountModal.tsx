import { Button, Group, List, Modal, Stack, Text, TextInput } from "@mantine/core";
import { useState } from "react";
import { api, unwrap } from "../shared/api";
import { ErrorText } from "../shared/ui";
import { sameEmail } from "./validation";

type Props = {
  email: string;
  opened: boolean;
  onClose: () => void;
  onDeleted: () => void;
};

/**
 * Deleting needs no password from the API, so the person types their own email: a
 * deliberate act that a stray click or a borrowed, unlocked screen cannot do by accident.
 */
export function DeleteAccountModal({ email, opened, onClose, onDeleted }: Props) {
  const [typed, setTyped] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const confirmed = sameEmail(typed, email);

  function close() {
    if (busy) return;
    setTyped("");
    setError(null);
    onClose();
  }

  async function remove() {
    setBusy(true);
    setError(null);
    try {
      await unwrap(api.DELETE("/api/v1/users/me"));
      onDeleted();
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  }

  return (
    <Modal opened={opened} onClose={close} title="Delete your account?" centered size="lg">
      <Stack>
        <Text>Deleting your account takes effect at once:</Text>
        <List spacing={4} size="sm">
          <List.Item>you are logged out on every device;</List.Item>
          <List.Item>you can no longer log in, and the email address is free for a new account;</List.Item>
          <List.Item>
            for a grace period (30 days, unless your service is set up otherwise) an administrator can still restore the
            account;
          </List.Item>
          <List.Item>
            after that your name, email, sessions and emails are erased for good. The audit trail keeps only an
            anonymous record of what was done.
          </List.Item>
        </List>
        <Text size="sm">Download your data first if you want a copy.</Text>
        <TextInput
          label="Type your email address to confirm"
          description={email}
          value={typed}
          onChange={(event) => setTyped(event.currentTarget.value)}
          autoComplete="off"
          data-autofocus
        />
        <ErrorText error={error} />
        <Group justify="flex-end">
          <Button variant="default" onClick={close} disabled={busy}>
            Cancel
          </Button>
          <Button color="red" onClick={remove} disabled={!confirmed} loading={busy}>
            Delete my account
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
