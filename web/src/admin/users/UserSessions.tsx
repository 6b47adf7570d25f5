import { Button, Group, Loader, Stack, Table, Text } from "@mantine/core";
import type { LoginSession, User } from "../../shared/api";
import { describeAgent, formatDateTime } from "../../shared/format";
import { notifySuccess } from "../../shared/notify";
import { confirmAction, ErrorText } from "../../shared/ui";
import { FitBadge } from "../FitBadge";
import { useEndAllUserSessions, useEndUserSession, useUserSessions } from "./queries";

type Props = { user: User; canWrite: boolean; isSelf: boolean };

export function UserSessions({ user, canWrite, isSelf }: Props) {
  const sessions = useUserSessions(user.id);
  const ended = (message: string) => notifySuccess({ message });
  const endOne = useEndUserSession(user.id, { onSuccess: () => ended("The session has ended.") });
  const endAll = useEndAllUserSessions(user.id, { onSuccess: () => ended(`Every session of ${user.name} has ended.`) });

  if (sessions.isPending) return <Loader size="sm" aria-label="Loading sessions" />;
  if (sessions.isError) return <ErrorText error={sessions.error} />;
  const list = sessions.data;

  const askEnd = (session: LoginSession) =>
    confirmAction({
      title: "End session",
      message: session.current
        ? "This is the session you are using now: you will be logged out."
        : `End ${user.name}'s session on ${describeAgent(session.user_agent)}? It is logged out at its next request.`,
      confirmLabel: "End session",
      onConfirm: () => endOne.mutate(session),
    });
  const askEndAll = () =>
    confirmAction({
      title: "End all sessions",
      message: isSelf
        ? "This ends every session of yours, this one included: you will be logged out."
        : `Log ${user.name} out everywhere? Each of their ${list.length} sessions ends at its next request.`,
      confirmLabel: "End all sessions",
      onConfirm: () => endAll.mutate(),
    });

  return (
    <Stack gap="sm">
      <ErrorText error={endOne.error ?? endAll.error} />
      {list.length === 0 ? (
        <Text c="dimmed">No active sessions.</Text>
      ) : (
        <Table.ScrollContainer minWidth={canWrite ? 720 : 620} type="native">
          <Table verticalSpacing="xs" aria-label="Sessions">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Device</Table.Th>
                <Table.Th>IP address</Table.Th>
                <Table.Th>Started</Table.Th>
                <Table.Th>Last used</Table.Th>
                <Table.Th>Ends if idle</Table.Th>
                {canWrite && <Table.Th aria-label="Actions" />}
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {list.map((session) => (
                <Table.Tr key={session.id}>
                  <Table.Td>
                    {describeAgent(session.user_agent)}
                    {session.current && (
                      <FitBadge ml="xs" size="sm">
                        this browser
                      </FitBadge>
                    )}
                  </Table.Td>
                  <Table.Td>{session.ip ?? "—"}</Table.Td>
                  <Table.Td style={{ whiteSpace: "nowrap" }}>{formatDateTime(session.created_at)}</Table.Td>
                  <Table.Td style={{ whiteSpace: "nowrap" }}>{formatDateTime(session.last_used_at)}</Table.Td>
                  <Table.Td style={{ whiteSpace: "nowrap" }}>{formatDateTime(session.expires_at)}</Table.Td>
                  {canWrite && (
                    <Table.Td ta="right">
                      <Button
                        size="xs"
                        variant="light"
                        color="red"
                        onClick={() => askEnd(session)}
                        loading={endOne.isPending && endOne.variables?.id === session.id}
                        aria-label={`End the session on ${describeAgent(session.user_agent)} started ${formatDateTime(session.created_at)}`}
                      >
                        End
                      </Button>
                    </Table.Td>
                  )}
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
      {canWrite && list.length > 0 && (
        <Group>
          <Button variant="light" color="red" onClick={askEndAll} loading={endAll.isPending}>
            End all sessions
          </Button>
        </Group>
      )}
    </Stack>
  );
}
