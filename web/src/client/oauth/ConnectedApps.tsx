import { Badge, Button, Group, Paper, Stack, Text, Title } from "@mantine/core";
import { ApiError, describeError } from "../../shared/errors";
import { formatDateTime } from "../../shared/format";
import { notifyFailure, notifySuccess } from "../../shared/notify";
import { confirmAction, ErrorText } from "../../shared/ui";
import { AppLogo } from "./AppLogo";
import { type ConnectedApp, useConnectedApps, useRemoveConnectedApp } from "./api";
import { describeScope, orderScopes } from "./scopes";

/** The Security page's card: applications that may use the account, and a way to stop each. */
export function ConnectedApps() {
  const apps = useConnectedApps();
  const remove = useRemoveConnectedApp({
    onSuccess: () => notifySuccess({ message: "Access removed. The application has to ask again." }),
    onError: (error) => {
      // Removed already (in another tab, or by an admin): the list catches up by itself.
      if (error instanceof ApiError && error.code === "CLIENT_NOT_FOUND") {
        notifySuccess({ message: "That application had no access left." });
        return;
      }
      notifyFailure({ title: "Access was not removed", message: describeError(error) });
    },
  });

  function confirmRemove(app: ConnectedApp) {
    confirmAction({
      title: `Remove ${app.name}'s access?`,
      message: `${app.name} is signed out at once and can no longer use your account. If you sign in to it again, it asks you first.`,
      confirmLabel: "Remove access",
      onConfirm: () => remove.mutate(app.client_id),
    });
  }

  return (
    <Paper withBorder radius="md" p="lg" component="section" aria-label="Connected apps">
      <Title order={2} size="h4" mb="xs">
        Connected apps
      </Title>
      <Text size="sm" c="dimmed" mb="sm">
        Applications you signed in to with your Gatehouse account, and what each may see.
      </Text>
      {apps.isPending ? (
        <Text size="sm" c="dimmed">
          Loading…
        </Text>
      ) : apps.isError ? (
        <ErrorText error={apps.error} />
      ) : apps.data.length === 0 ? (
        <Text size="sm">No application has access to your account.</Text>
      ) : (
        <Stack gap="sm" component="ul" p={0} m={0} style={{ listStyle: "none" }} aria-label="Connected apps">
          {apps.data.map((app) => (
            <Paper key={app.client_id} component="li" withBorder p="sm" radius="md">
              <Group justify="space-between" wrap="wrap" gap="sm">
                <Group gap="sm" wrap="nowrap" style={{ minWidth: 0 }}>
                  <AppLogo name={app.name} logoUrl={app.logo_url} />
                  <Stack gap={2} style={{ minWidth: 0 }}>
                    <Text fw={600} style={{ overflowWrap: "anywhere" }}>
                      {app.name}
                    </Text>
                    <Text size="xs" c="dimmed">
                      Since {formatDateTime(app.granted_at)}
                    </Text>
                    <Group gap={4}>
                      {orderScopes(app.scopes).map((scope) => (
                        <Badge key={scope} size="sm" variant="light" color="gray" tt="none">
                          {describeScope(scope)}
                        </Badge>
                      ))}
                    </Group>
                  </Stack>
                </Group>
                <Button
                  variant="light"
                  color="red"
                  size="xs"
                  onClick={() => confirmRemove(app)}
                  loading={remove.isPending && remove.variables === app.client_id}
                  aria-label={`Remove access of ${app.name}`}
                >
                  Remove access
                </Button>
              </Group>
            </Paper>
          ))}
        </Stack>
      )}
    </Paper>
  );
}
