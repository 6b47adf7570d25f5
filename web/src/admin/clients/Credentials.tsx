import { Alert, Button, Code, CopyButton, Group, Modal, Stack, Text } from "@mantine/core";
import { useId } from "react";

/** A value to copy, under its label: the client_id, or a secret. */
export function CopyValue({ label, value }: { label: string; value: string }) {
  const id = useId();
  return (
    <Stack gap={4}>
      <Text fz="sm" fw={500} id={id}>
        {label}
      </Text>
      <Group gap="xs" wrap="nowrap" align="flex-start">
        <Code block aria-labelledby={id} style={{ overflowWrap: "anywhere", whiteSpace: "pre-wrap", flex: 1 }}>
          {value}
        </Code>
        <CopyButton value={value}>
          {({ copied, copy }) => (
            <Button
              variant="light"
              size="xs"
              color={copied ? "teal" : undefined}
              onClick={copy}
              aria-label={`Copy ${label}`}
            >
              {copied ? "Copied" : "Copy"}
            </Button>
          )}
        </CopyButton>
      </Group>
    </Stack>
  );
}

/** The warning that goes with a secret: the API never returns it again. */
export function SecretWarning() {
  return (
    <Alert color="orange" variant="light" title="Copy the secret now">
      This is the only time Gatehouse shows the client secret: it keeps only a hash. Store it with the application; if
      it is lost, rotate the secret to get a new one.
    </Alert>
  );
}

type Props = { clientId: string; secret: string | null; onClose: () => void };

/** A rotated secret, shown this once. */
export function NewSecretModal({ clientId, secret, onClose }: Props) {
  return (
    <Modal opened={secret !== null} onClose={onClose} title="New client secret" closeOnClickOutside={false}>
      <Stack>
        <SecretWarning />
        <Text fz="sm">The previous secret has stopped working.</Text>
        <CopyValue label="client_id" value={clientId} />
        <CopyValue label="client_secret" value={secret ?? ""} />
        <Group justify="flex-end">
          <Button onClick={onClose}>I have stored it</Button>
        </Group>
      </Stack>
    </Modal>
  );
}
