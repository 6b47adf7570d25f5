import { Anchor, Button, Group, Loader, Stack, Table, Text } from "@mantine/core";
import { Link } from "react-router";
import { ApiError } from "../../shared/errors";
import { ErrorText } from "../../shared/ui";
import { FitBadge } from "../FitBadge";
import type { AuditQuery } from "./auditFilters";
import { type AuditEvent, formatTimeWithSeconds, OUTCOME_COLORS, shortId, summarizeDetails } from "./describe";
import { useAuditTrail } from "./queries";

export const AUDIT_REFUSED = "Your role cannot see the audit trail.";

function IdLink({ id, type }: { id: string | null; type?: string | null }) {
  if (!id)
    return (
      <Text span c="dimmed">
        —
      </Text>
    );
  if (type === "user" || type === undefined) {
    return (
      <Anchor component={Link} to={`/users/${id}`} title={id} ff="monospace" fz="sm">
        {shortId(id)}
      </Anchor>
    );
  }
  if (type === "webhook") {
    return (
      <Anchor component={Link} to={`/webhooks/${id}`} title={id} ff="monospace" fz="sm">
        {shortId(id)}
      </Anchor>
    );
  }
  return (
    <Text span ff="monospace" fz="sm" title={id}>
      {shortId(id)}
    </Text>
  );
}

function Row({ event }: { event: AuditEvent }) {
  return (
    <Table.Tr>
      <Table.Td style={{ whiteSpace: "nowrap" }}>{formatTimeWithSeconds(event.occurred_at)}</Table.Td>
      <Table.Td>
        <Text ff="monospace" fz="sm">
          {event.action}
        </Text>
      </Table.Td>
      <Table.Td>
        <FitBadge color={OUTCOME_COLORS[event.outcome] ?? "gray"}>{event.outcome}</FitBadge>
        {event.reason && (
          <Text fz="xs" c="dimmed">
            {event.reason}
          </Text>
        )}
      </Table.Td>
      <Table.Td>
        {event.actor_id ? (
          <IdLink id={event.actor_id} />
        ) : (
          <Text span c="dimmed" fz="sm">
            {event.actor_role ?? "anonymous"}
          </Text>
        )}
        {event.actor_id && event.actor_role && (
          <Text fz="xs" c="dimmed">
            {event.actor_role}
          </Text>
        )}
      </Table.Td>
      <Table.Td>
        <IdLink id={event.target_id} type={event.target_type ?? null} />
        {event.target_type && (
          <Text fz="xs" c="dimmed">
            {event.target_type}
          </Text>
        )}
      </Table.Td>
      <Table.Td>
        <Text fz="sm">{event.pii?.ip ?? "—"}</Text>
      </Table.Td>
      <Table.Td>
        <Text fz="sm" c="dimmed" style={{ wordBreak: "break-word" }}>
          {summarizeDetails(event) || "—"}
        </Text>
      </Table.Td>
    </Table.Tr>
  );
}

type Props = {
  query: AuditQuery;
  /** False: the role may not read the trail, so nothing is asked of the API. */
  allowed: boolean;
  emptyText?: string;
  label: string;
};

/** Audit events, newest first, with "Load older" following the API's cursor. */
export function AuditTable({ query, allowed, emptyText = "No events match.", label }: Props) {
  const trail = useAuditTrail(query, allowed);
  if (!allowed) return <Text c="dimmed">{AUDIT_REFUSED}</Text>;
  if (trail.isPending) return <Loader size="sm" aria-label="Loading events" />;
  if (trail.isError && !trail.data) {
    if (trail.error instanceof ApiError && trail.error.status === 403) return <Text c="dimmed">{AUDIT_REFUSED}</Text>;
    return <ErrorText error={trail.error} />;
  }
  const events = trail.data?.pages.flatMap((page) => page.items) ?? [];
  if (events.length === 0) return <Text c="dimmed">{emptyText}</Text>;
  return (
    <Stack gap="sm">
      <Table.ScrollContainer minWidth={960}>
        <Table striped highlightOnHover verticalSpacing="xs" aria-label={label}>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Time</Table.Th>
              <Table.Th>Action</Table.Th>
              <Table.Th>Outcome</Table.Th>
              <Table.Th>Actor</Table.Th>
              <Table.Th>Target</Table.Th>
              <Table.Th>IP</Table.Th>
              <Table.Th>Details</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {events.map((event) => (
              <Row key={event.id} event={event} />
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
      {trail.isFetchNextPageError && <ErrorText error={trail.error} />}
      <Group justify="space-between">
        <Text fz="sm" c="dimmed">
          {events.length === 1 ? "1 event" : `${events.length} events`} shown
        </Text>
        {trail.hasNextPage ? (
          <Button variant="default" onClick={() => trail.fetchNextPage()} loading={trail.isFetchingNextPage}>
            Load older
          </Button>
        ) : (
          <Text fz="sm" c="dimmed">
            No older events
          </Text>
        )}
      </Group>
    </Stack>
  );
}
