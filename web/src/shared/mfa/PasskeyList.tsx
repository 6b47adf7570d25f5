import { Badge, Button, Group, Modal, Paper, Stack, Text, TextInput } from "@mantine/core";
import { type FormEvent, useState } from "react";
import type { Passkey } from "../api";
import { describeError } from "../errors";
import { formatDateTime } from "../format";
import { notifyFailure, notifySuccess } from "../notify";
import { confirmAction, ErrorText } from "../ui";
import { removePasskey, renamePasskey, useMfaChanged } from "./queries";

/** A passkey's facts in words: when it was made and last used, and whether it is synced. */
export function PasskeyFacts({ passkey }: { passkey: Passkey }) {
  return (
    <Stack gap={2} miw={0}>
      <Group gap="xs">
        <Text fw={600} style={{ overflowWrap: "anywhere" }}>
          {passkey.name}
        </Text>
        {passkey.backed_up && (
          <Badge variant="light" color="teal" title="Synced between devices by your platform or password manager">
            Synced
          </Badge>
        )}
      </Group>
      <Text size="sm" c="dimmed">
        Added {formatDateTime(passkey.created_at)} · last used{" "}
        {passkey.last_used_at ? formatDateTime(passkey.last_used_at) : "never"}
      </Text>
    </Stack>
  );
}

export function PasskeyList({ passkeys }: { passkeys: Passkey[] }) {
  const changed = useMfaChanged();
  const [renaming, setRenaming] = useState<Passkey | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);

  async function remove(passkey: Passkey) {
    setRemoving(passkey.id);
    try {
      await removePasskey(passkey.id);
      notifySuccess({ message: `The passkey ${passkey.name} is removed.` });
    } catch (error) {
      notifyFailure({ title: "The passkey was not removed", message: describeError(error) });
    } finally {
      setRemoving(null);
      await changed();
    }
  }

  if (!passkeys.length) return <Text c="dimmed">No passkeys yet.</Text>;

  return (
    <>
      <Stack gap="sm" component="ul" p={0} m={0} style={{ listStyle: "none" }} aria-label="Your passkeys">
        {passkeys.map((passkey) => (
          <Paper component="li" key={passkey.id} withBorder radius="md" p="sm">
            <Group justify="space-between" wrap="wrap" gap="sm">
              <PasskeyFacts passkey={passkey} />
              <Group gap="xs">
                <Button
                  size="xs"
                  variant="default"
                  onClick={() => setRenaming(passkey)}
                  aria-label={`Rename ${passkey.name}`}
                >
                  Rename
                </Button>
                <Button
                  size="xs"
                  variant="light"
                  color="red"
                  loading={removing === passkey.id}
                  aria-label={`Remove ${passkey.name}`}
                  onClick={() =>
                    confirmAction({
                      title: "Remove this passkey?",
                      message: `${passkey.name} will no longer log you in. Remove it from the device or password manager too.`,
                      confirmLabel: "Remove passkey",
                      onConfirm: () => void remove(passkey),
                    })
                  }
                >
                  Remove
                </Button>
              </Group>
            </Group>
          </Paper>
        ))}
      </Stack>
      <Modal opened={renaming !== null} onClose={() => setRenaming(null)} title="Rename the passkey">
        {renaming && <RenameForm passkey={renaming} onDone={() => setRenaming(null)} />}
      </Modal>
    </>
  );
}

function RenameForm({ passkey, onDone }: { passkey: Passkey; onDone: () => void }) {
  const changed = useMfaChanged();
  const [name, setName] = useState(passkey.name);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!name.trim()) return;
    setBusy(true);
    setError(null);
    try {
      await renamePasskey(passkey.id, name.trim());
      await changed();
      onDone();
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form onSubmit={submit} noValidate aria-label="Rename the passkey">
      <Stack>
        <ErrorText error={error} />
        <TextInput
          label="Passkey name"
          value={name}
          maxLength={100}
          onChange={(event) => setName(event.currentTarget.value)}
          error={name.trim() ? null : "Give the passkey a name"}
          data-autofocus
        />
        <Group justify="flex-end">
          <Button type="submit" loading={busy} disabled={!name.trim()}>
            Save name
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
