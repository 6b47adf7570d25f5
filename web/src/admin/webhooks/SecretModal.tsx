import { Alert, Button, Code, CopyButton, Group, Modal, Stack, Text } from "@mantine/core";

type Props = { secret: string | null; title: string; onClose: () => void };

/** A signing secret, shown this once: the API never returns it again. */
export function SecretModal({ secret, title, onClose }: Props) {
  return (
    <Modal opened={secret !== null} onClose={onClose} title={title} closeOnClickOutside={false}>
      <Stack>
        <Alert color="orange" variant="light" title="Copy it now">
          This is the only time Gatehouse shows the signing secret. Store it with the receiving service; if it is lost,
          rotate the secret to get a new one.
        </Alert>
        <Text fz="sm" fw={500} id="webhook-secret-label">
          Signing secret
        </Text>
        <Code block aria-labelledby="webhook-secret-label" style={{ overflowWrap: "anywhere", whiteSpace: "pre-wrap" }}>
          {secret}
        </Code>
        <Group justify="flex-end">
          <CopyButton value={secret ?? ""}>
            {({ copied, copy }) => (
              <Button variant="light" color={copied ? "teal" : undefined} onClick={copy}>
                {copied ? "Copied" : "Copy secret"}
              </Button>
            )}
          </CopyButton>
          <Button onClick={onClose}>I have stored it</Button>
        </Group>
      </Stack>
    </Modal>
  );
}
