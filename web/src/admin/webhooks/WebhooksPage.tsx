import { Anchor, Button, Group, Loader, Pagination, Paper, Stack, Table, Text, Title } from "@mantine/core";
import { useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import type { Schemas } from "../../shared/api";
import { ApiError } from "../../shared/errors";
import { formatDateTime } from "../../shared/format";
import { ErrorText } from "../../shared/ui";
import { usePermissions } from "../permissions";
import { usePageTitle } from "../usePageTitle";
import { CreateWebhookModal } from "./CreateWebhookModal";
import { describeEventTypes } from "./eventTypes";
import { useWebhooks } from "./queries";
import { SecretModal } from "./SecretModal";
import { WebhookStatus } from "./WebhookStatus";

export const WEBHOOKS_REFUSED = "Your role cannot see webhooks.";

export function WebhooksPage() {
  usePageTitle("Webhooks");
  const { canWrite } = usePermissions();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get("page")) || 1);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<Schemas["WebhookWithSecret"] | null>(null);

  const list = useWebhooks(page);
  const refused = list.error instanceof ApiError && list.error.status === 403;
  const hooks = list.data?.data ?? [];
  const meta = list.data?.meta;

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Webhooks</Title>
        {canWrite && <Button onClick={() => setCreating(true)}>Create webhook</Button>}
      </Group>
      <Text c="dimmed" fz="sm">
        Gatehouse POSTs each event a subscription asks for to its URL, signed with its secret, and retries for about a
        day until the receiver answers 2xx.
      </Text>

      {refused ? <Text>{WEBHOOKS_REFUSED}</Text> : <ErrorText error={list.error} />}
      {list.isPending && <Loader size="sm" aria-label="Loading webhooks" />}

      {list.isSuccess && hooks.length === 0 && (
        <Paper withBorder p="lg">
          <Text c="dimmed" ta="center">
            No webhooks yet.{canWrite ? " Create one to send Gatehouse's events to another service." : ""}
          </Text>
        </Paper>
      )}

      {hooks.length > 0 && (
        <Paper withBorder>
          <Table.ScrollContainer minWidth={820} type="native">
            <Table highlightOnHover verticalSpacing="sm" horizontalSpacing="md" aria-label="Webhooks">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>URL</Table.Th>
                  <Table.Th>Description</Table.Th>
                  <Table.Th>Event types</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th>Created</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {hooks.map((hook) => (
                  <Table.Tr
                    key={hook.id}
                    style={{ cursor: "pointer" }}
                    onClick={() => navigate(`/webhooks/${hook.id}`)}
                  >
                    <Table.Td style={{ maxWidth: 320, overflowWrap: "anywhere" }}>
                      <Anchor component={Link} to={`/webhooks/${hook.id}`} onClick={(event) => event.stopPropagation()}>
                        {hook.url}
                      </Anchor>
                    </Table.Td>
                    <Table.Td>
                      {hook.description || (
                        <Text span c="dimmed">
                          —
                        </Text>
                      )}
                    </Table.Td>
                    <Table.Td fz="sm">{describeEventTypes(hook.event_types)}</Table.Td>
                    <Table.Td>
                      <WebhookStatus webhook={hook} />
                    </Table.Td>
                    <Table.Td style={{ whiteSpace: "nowrap" }}>{formatDateTime(hook.created_at)}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        </Paper>
      )}

      {meta && meta.total_pages > 1 && (
        <Group justify="flex-end">
          <Pagination
            total={meta.total_pages}
            value={page}
            onChange={(next) => setParams(next === 1 ? {} : { page: String(next) })}
            size="sm"
            getItemProps={(n) => ({ "aria-label": `Page ${n}` })}
            getControlProps={(control) => ({
              "aria-label": `${control.charAt(0).toUpperCase()}${control.slice(1)} page`,
            })}
          />
        </Group>
      )}

      {canWrite && (
        <CreateWebhookModal
          opened={creating}
          onClose={() => setCreating(false)}
          onCreated={(hook) => setCreated(hook)}
        />
      )}
      <SecretModal title="Webhook created" secret={created?.secret ?? null} onClose={() => setCreated(null)} />
    </Stack>
  );
}
