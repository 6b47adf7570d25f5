import { Anchor, Button, Group, Loader, Pagination, Paper, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import type { Schemas } from "../../shared/api";
import { ApiError } from "../../shared/errors";
import { Field } from "../../shared/Field";
import { formatDateTime } from "../../shared/format";
import { notifySuccess } from "../../shared/notify";
import { confirmAction, ErrorText, PageLoader } from "../../shared/ui";
import type { Versioned } from "../../shared/versioned";
import { usePermissions } from "../permissions";
import { usePageTitle } from "../usePageTitle";
import { describeEventTypes } from "./eventTypes";
import {
  useDeleteWebhook,
  useDeliveries,
  useRotateWebhookSecret,
  useSetWebhookEnabled,
  useTestWebhook,
  useWebhook,
} from "./queries";
import { SecretModal } from "./SecretModal";
import { DeliveryStatus, WebhookStatus } from "./WebhookStatus";
import { WEBHOOKS_REFUSED } from "./WebhooksPage";

type Webhook = Schemas["WebhookRead"];

export function WebhookPage() {
  const { id = "" } = useParams();
  const hook = useWebhook(id);
  usePageTitle(hook.data ? "Webhook" : null);

  if (hook.isPending) return <PageLoader />;
  if (hook.isError) {
    const status = hook.error instanceof ApiError ? hook.error.status : 0;
    return (
      <Stack>
        <BackLink />
        <Title order={2}>Webhook</Title>
        {status === 404 || status === 400 ? (
          <Text>This webhook does not exist, or has been deleted.</Text>
        ) : status === 403 ? (
          <Text>{WEBHOOKS_REFUSED}</Text>
        ) : (
          <ErrorText error={hook.error} />
        )}
      </Stack>
    );
  }
  return <WebhookView current={hook.data} />;
}

function BackLink() {
  return (
    <Anchor component={Link} to="/webhooks" fz="sm">
      ← All webhooks
    </Anchor>
  );
}

function WebhookView({ current }: { current: Versioned<Webhook> }) {
  const hook = current.data;
  const { canWrite } = usePermissions();
  const navigate = useNavigate();
  const [secret, setSecret] = useState<string | null>(null);

  const toggle = useSetWebhookEnabled(current, {
    onSuccess: (result) =>
      notifySuccess({ message: result.data.enabled ? "The webhook is enabled." : "The webhook is disabled." }),
  });
  const rotate = useRotateWebhookSecret(current, { onSuccess: (result) => setSecret(result.secret) });
  const test = useTestWebhook(hook.id, {
    onSuccess: () => notifySuccess({ message: "A test event is on its way. Its delivery is listed below." }),
  });
  const remove = useDeleteWebhook(current, {
    onSuccess: () => {
      notifySuccess({ message: "The webhook is deleted; nothing more is sent to it." });
      navigate("/webhooks");
    },
  });
  const error = toggle.error ?? rotate.error ?? test.error ?? remove.error;

  return (
    <Stack>
      <BackLink />
      <Group justify="space-between" align="center">
        <Title order={2} style={{ overflowWrap: "anywhere" }}>
          {hook.description || "Webhook"}
        </Title>
        <WebhookStatus webhook={hook} />
      </Group>
      <Paper withBorder p="md">
        <SimpleGrid cols={{ base: 1, sm: 2 }} spacing="md">
          <Field label="URL">{hook.url}</Field>
          <Field label="Event types">{describeEventTypes(hook.event_types)}</Field>
          <Field label="Created">{formatDateTime(hook.created_at)}</Field>
          <Field label="Updated">{formatDateTime(hook.updated_at)}</Field>
          {!hook.enabled && <Field label="Why it is disabled">{hook.disabled_reason ?? "—"}</Field>}
        </SimpleGrid>
      </Paper>

      {canWrite && (
        <Paper withBorder p="md" component="section" aria-label="Actions">
          <Stack gap="sm">
            <ErrorText error={error} />
            <Group gap="sm">
              {hook.enabled ? (
                <Button variant="default" onClick={() => toggle.mutate(false)} loading={toggle.isPending}>
                  Disable
                </Button>
              ) : (
                <Button onClick={() => toggle.mutate(true)} loading={toggle.isPending}>
                  Enable
                </Button>
              )}
              <Button variant="default" onClick={() => test.mutate()} loading={test.isPending} disabled={!hook.enabled}>
                Send test event
              </Button>
              <Button
                variant="default"
                loading={rotate.isPending}
                onClick={() =>
                  confirmAction({
                    title: "Rotate the secret",
                    message:
                      "Gatehouse signs with a new secret from now on, retries of older events included; the old one stops verifying at once. The new secret is shown once.",
                    confirmLabel: "Rotate secret",
                    onConfirm: () => rotate.mutate(),
                  })
                }
              >
                Rotate secret
              </Button>
              <Button
                color="red"
                variant="light"
                loading={remove.isPending}
                onClick={() =>
                  confirmAction({
                    title: "Delete webhook",
                    message: `Stop sending events to ${hook.url}? Its pending deliveries are dropped.`,
                    confirmLabel: "Delete webhook",
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

      <Paper withBorder p="md" component="section" aria-label="Deliveries">
        <Title order={3} size="h4" mb="sm">
          Recent deliveries
        </Title>
        <Deliveries webhookId={hook.id} />
      </Paper>

      <SecretModal title="New signing secret" secret={secret} onClose={() => setSecret(null)} />
    </Stack>
  );
}

function Deliveries({ webhookId }: { webhookId: string }) {
  const [page, setPage] = useState(1);
  const deliveries = useDeliveries(webhookId, page);
  if (deliveries.isPending) return <Loader size="sm" aria-label="Loading deliveries" />;
  if (deliveries.isError) return <ErrorText error={deliveries.error} />;
  const { data, meta } = deliveries.data;
  return (
    <Stack gap="sm">
      <Group justify="space-between">
        <Text fz="sm" c="dimmed">
          {meta.total_count === 1 ? "1 delivery" : `${meta.total_count} deliveries`}, newest first; finished ones are
          kept 30 days.
        </Text>
        <Button size="xs" variant="default" onClick={() => deliveries.refetch()} loading={deliveries.isFetching}>
          Refresh
        </Button>
      </Group>
      {data.length === 0 ? (
        <Text c="dimmed">Nothing has been sent to this webhook yet.</Text>
      ) : (
        <Table.ScrollContainer minWidth={860} type="native">
          <Table verticalSpacing="xs" aria-label="Deliveries">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Event type</Table.Th>
                <Table.Th>Status</Table.Th>
                <Table.Th>Attempts</Table.Th>
                <Table.Th>Last answer</Table.Th>
                <Table.Th>Created</Table.Th>
                <Table.Th>Finished / next attempt</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.map((delivery) => (
                <Table.Tr key={delivery.id}>
                  <Table.Td ff="monospace" fz="sm">
                    {delivery.event_type}
                  </Table.Td>
                  <Table.Td>
                    <DeliveryStatus status={delivery.status} />
                  </Table.Td>
                  <Table.Td>{delivery.attempts}</Table.Td>
                  <Table.Td fz="sm" style={{ maxWidth: 280, overflowWrap: "anywhere" }}>
                    {delivery.last_status_code !== null ? `HTTP ${delivery.last_status_code}` : ""}
                    {delivery.last_error && (
                      <Text fz="xs" c="dimmed">
                        {delivery.last_error}
                      </Text>
                    )}
                    {delivery.last_status_code === null && !delivery.last_error && "—"}
                  </Table.Td>
                  <Table.Td style={{ whiteSpace: "nowrap" }}>{formatDateTime(delivery.created_at)}</Table.Td>
                  <Table.Td style={{ whiteSpace: "nowrap" }}>
                    {delivery.finished_at
                      ? formatDateTime(delivery.finished_at)
                      : delivery.next_attempt_at
                        ? `next ${formatDateTime(delivery.next_attempt_at)}`
                        : "—"}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
      {meta.total_pages > 1 && (
        <Pagination
          total={meta.total_pages}
          value={page}
          onChange={setPage}
          size="sm"
          getItemProps={(n) => ({ "aria-label": `Page ${n}` })}
          getControlProps={(control) => ({
            "aria-label": `${control.charAt(0).toUpperCase()}${control.slice(1)} page`,
          })}
        />
      )}
    </Stack>
  );
}
