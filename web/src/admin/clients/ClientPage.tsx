import { Anchor, Button, Group, List, Paper, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { ApiError } from "../../shared/errors";
import { Field } from "../../shared/Field";
import { formatDateTime } from "../../shared/format";
import { notifySuccess } from "../../shared/notify";
import { confirmAction, ErrorText, PageLoader } from "../../shared/ui";
import type { Versioned } from "../../shared/versioned";
import { FitBadge } from "../FitBadge";
import { usePermissions } from "../permissions";
import { usePageTitle } from "../usePageTitle";
import { ClientStatus } from "./ClientStatus";
import { CLIENTS_REFUSED } from "./ClientsPage";
import { CopyValue, NewSecretModal } from "./Credentials";
import { EditClientModal } from "./EditClientModal";
import { type OAuthClient, useClient, useDeleteClient, useRotateClientSecret, useSetClientEnabled } from "./queries";

export function ClientPage() {
  const { id = "" } = useParams();
  const client = useClient(id);
  usePageTitle(client.data ? client.data.data.name : null);

  if (client.isPending) return <PageLoader />;
  if (client.isError) {
    const status = client.error instanceof ApiError ? client.error.status : 0;
    return (
      <Stack>
        <BackLink />
        <Title order={2}>Client</Title>
        {status === 404 || status === 400 ? (
          <Text>This client does not exist, or has been deleted.</Text>
        ) : status === 403 ? (
          <Text>{CLIENTS_REFUSED}</Text>
        ) : (
          <ErrorText error={client.error} />
        )}
      </Stack>
    );
  }
  return <ClientView current={client.data} />;
}

function BackLink() {
  return (
    <Anchor component={Link} to="/clients" fz="sm">
      ← All clients
    </Anchor>
  );
}

function Uris({ uris }: { uris: string[] }) {
  if (uris.length === 0) return <Text c="dimmed">none</Text>;
  return (
    <List size="sm" spacing={2} listStyleType="none" p={0}>
      {uris.map((uri) => (
        <List.Item key={uri} ff="monospace">
          {uri}
        </List.Item>
      ))}
    </List>
  );
}

function ClientView({ current }: { current: Versioned<OAuthClient> }) {
  const client = current.data;
  const { canWrite } = usePermissions();
  const navigate = useNavigate();
  const [editing, setEditing] = useState(false);
  const [secret, setSecret] = useState<string | null>(null);

  const toggle = useSetClientEnabled(current, {
    onSuccess: (result) =>
      notifySuccess({
        message: result.data.enabled
          ? "The client is enabled."
          : "The client is disabled: every login and token of it fails.",
      }),
  });
  const rotate = useRotateClientSecret(current, { onSuccess: (result) => setSecret(result.client_secret) });
  const remove = useDeleteClient(current, {
    onSuccess: () => {
      notifySuccess({ message: "The client is deleted." });
      navigate("/clients");
    },
  });
  const error = toggle.error ?? rotate.error ?? remove.error;
  const confidential = client.type === "confidential";

  return (
    <Stack>
      <BackLink />
      <Group justify="space-between" align="center">
        <Title order={2} style={{ overflowWrap: "anywhere" }}>
          {client.name}
        </Title>
        <Group gap="xs">
          {client.trusted && <FitBadge color="indigo">trusted</FitBadge>}
          <ClientStatus enabled={client.enabled} />
        </Group>
      </Group>
      <Paper withBorder p="md">
        <Stack>
          <CopyValue label="client_id" value={client.client_id} />
          <SimpleGrid cols={{ base: 1, sm: 2 }} spacing="md">
            <Field label="Type">{confidential ? "confidential (has a secret)" : "public (no secret, PKCE)"}</Field>
            <Field label="Scopes">{client.scopes.join(", ")}</Field>
            <Field label="Grant types">{client.grant_types.join(", ")}</Field>
            <Field label="Trusted">
              {client.trusted ? "yes: people are not asked to consent" : "no: people consent"}
            </Field>
            <Field label="Redirect URIs">
              <Uris uris={client.redirect_uris} />
            </Field>
            <Field label="Post-logout redirect URIs">
              <Uris uris={client.post_logout_redirect_uris} />
            </Field>
            <Field label="Logo URL">{client.logo_url ?? "none"}</Field>
            {confidential && <Field label="Secret issued">{formatDateTime(client.secret_rotated_at)}</Field>}
            <Field label="Created">{formatDateTime(client.created_at)}</Field>
            <Field label="Updated">{formatDateTime(client.updated_at)}</Field>
          </SimpleGrid>
        </Stack>
      </Paper>

      {canWrite && (
        <Paper withBorder p="md" component="section" aria-label="Actions">
          <Stack gap="sm">
            <ErrorText error={error} />
            <Group gap="sm">
              <Button variant="default" onClick={() => setEditing(true)}>
                Edit
              </Button>
              {client.enabled ? (
                <Button
                  variant="default"
                  loading={toggle.isPending}
                  onClick={() =>
                    confirmAction({
                      title: "Disable client",
                      message: `Every login through ${client.name} and every use of its tokens and secret fails until it is enabled again.`,
                      confirmLabel: "Disable client",
                      onConfirm: () => toggle.mutate(false),
                    })
                  }
                >
                  Disable
                </Button>
              ) : (
                <Button onClick={() => toggle.mutate(true)} loading={toggle.isPending}>
                  Enable
                </Button>
              )}
              {confidential && (
                <Button
                  variant="default"
                  loading={rotate.isPending}
                  onClick={() =>
                    confirmAction({
                      title: "Rotate the secret",
                      message:
                        "The current secret stops working at once: the application fails until it has the new one. The new secret is shown once.",
                      confirmLabel: "Rotate secret",
                      onConfirm: () => rotate.mutate(),
                    })
                  }
                >
                  Rotate secret
                </Button>
              )}
              <Button
                color="red"
                variant="light"
                loading={remove.isPending}
                onClick={() =>
                  confirmAction({
                    title: "Delete client",
                    message: `Delete ${client.name}? Its logins stop, and the consents people gave it are forgotten. This cannot be undone.`,
                    confirmLabel: "Delete client",
                    onConfirm: () => remove.mutate(),
                  })
                }
              >
                Delete
              </Button>
            </Group>
          </Stack>
        </Paper>
      )}

      {canWrite && <EditClientModal current={current} opened={editing} onClose={() => setEditing(false)} />}
      <NewSecretModal clientId={client.client_id} secret={secret} onClose={() => setSecret(null)} />
    </Stack>
  );
}
