import { Badge, Button, Group, Paper, Stack, Text } from "@mantine/core";
import { useMutation } from "@tanstack/react-query";
import { useNavigate } from "react-router";
import type { LoginSession } from "../../shared/api";
import { useAuth } from "../../shared/auth";
import { describeError } from "../../shared/errors";
import { describeAgent, formatDateTime } from "../../shared/format";
import { useEndMyOtherSessions, useEndMySession, useMySessions } from "../../shared/me";
import { notifyFailure, notifySuccess } from "../../shared/notify";
import { confirmAction, ErrorText, PageLoader } from "../../shared/ui";
import { PageHeader } from "../PageHeader";

/** This device first, then the most recently used. */
export function orderSessions(sessions: LoginSession[]): LoginSession[] {
  return [...sessions].sort(
    (a, b) => Number(b.current ?? false) - Number(a.current ?? false) || b.last_used_at.localeCompare(a.last_used_at),
  );
}

export function SessionsPage() {
  const navigate = useNavigate();
  const { logout } = useAuth();
  const sessions = useMySessions();

  const failed = (error: unknown) =>
    notifyFailure({ title: "The session was not ended", message: describeError(error) });

  const endOne = useEndMySession({
    onSuccess: () => notifySuccess({ message: "The session has been ended." }),
    onError: failed,
  });
  const endOthers = useEndMyOtherSessions({
    onSuccess: () => notifySuccess({ message: "All your other sessions have been ended." }),
    onError: failed,
  });
  const logOutHere = useMutation({
    mutationFn: () => logout(),
    onSuccess: () => navigate("/login", { replace: true }),
    onError: failed,
  });

  const list = sessions.data ? orderSessions(sessions.data) : [];
  const others = list.filter((s) => !s.current);

  function confirmEnd(item: LoginSession) {
    confirmAction({
      title: "End this session?",
      message: `${describeAgent(item.user_agent)} (${item.ip ?? "unknown address"}) will be logged out.`,
      confirmLabel: "End session",
      onConfirm: () => endOne.mutate(item.id),
    });
  }

  function confirmLogOut() {
    confirmAction({
      title: "Log out on this device?",
      message: "This is the session you are using now: ending it logs you out here.",
      confirmLabel: "Log out",
      onConfirm: () => logOutHere.mutate(),
    });
  }

  function confirmEndOthers() {
    confirmAction({
      title: "End all other sessions?",
      message: `Every other device (${others.length}) will be logged out. This one stays logged in.`,
      confirmLabel: "End other sessions",
      onConfirm: () => endOthers.mutate(),
    });
  }

  return (
    <>
      <PageHeader
        title="Sessions"
        description="Where you are logged in. End any session you do not recognise, then change your password."
      />
      {sessions.isError ? (
        <ErrorText error={sessions.error} />
      ) : !sessions.data ? (
        <PageLoader />
      ) : (
        <Stack>
          <Group justify="space-between">
            <Text c="dimmed" size="sm">
              {list.length === 1 ? "1 active session" : `${list.length} active sessions`}
            </Text>
            <Button
              variant="light"
              color="red"
              onClick={confirmEndOthers}
              disabled={!others.length}
              loading={endOthers.isPending}
            >
              End all other sessions
            </Button>
          </Group>
          <Stack gap="sm" component="ul" p={0} m={0} style={{ listStyle: "none" }} aria-label="Your sessions">
            {list.map((item) => (
              <SessionCard
                key={item.id}
                item={item}
                busy={
                  (endOne.isPending && endOne.variables === item.id) || (item.current === true && logOutHere.isPending)
                }
                onEnd={() => (item.current ? confirmLogOut() : confirmEnd(item))}
              />
            ))}
          </Stack>
        </Stack>
      )}
    </>
  );
}

function SessionCard({ item, busy, onEnd }: { item: LoginSession; busy: boolean; onEnd: () => void }) {
  const device = describeAgent(item.user_agent);
  return (
    <Paper component="li" withBorder radius="md" p="md">
      <Group justify="space-between" wrap="wrap" gap="sm">
        <Stack gap={4} miw={0}>
          <Group gap="xs">
            <Text fw={600}>{device}</Text>
            {item.current && (
              <Badge color="green" variant="light">
                This device
              </Badge>
            )}
          </Group>
          <Text size="sm" c="dimmed">
            IP address {item.ip ?? "unknown"}
          </Text>
          <Text size="sm" c="dimmed">
            Logged in {formatDateTime(item.created_at)} · last used {formatDateTime(item.last_used_at)}
          </Text>
        </Stack>
        <Button
          variant="default"
          onClick={onEnd}
          loading={busy}
          aria-label={
            item.current ? "Log out on this device" : `End the session on ${device}, ${item.ip ?? "unknown address"}`
          }
        >
          {item.current ? "Log out" : "End"}
        </Button>
      </Group>
    </Paper>
  );
}
