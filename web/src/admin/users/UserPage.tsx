import { Alert, Anchor, Button, Group, Paper, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { type ReactNode, useState } from "react";
import { Link, useLocation, useNavigate, useParams } from "react-router";
import { type AdminUser, downloadJson, type User } from "../../shared/api";
import { ApiError } from "../../shared/errors";
import { Field } from "../../shared/Field";
import { formatDateTime } from "../../shared/format";
import { notifySuccess } from "../../shared/notify";
import { confirmAction, ErrorText, PageLoader } from "../../shared/ui";
import type { Versioned } from "../../shared/versioned";
import { FitBadge } from "../FitBadge";
import { usePermissions } from "../permissions";
import { usePageTitle } from "../usePageTitle";
import { EditUserModal } from "./EditUserModal";
import { usersListPath } from "./lastListSearch";
import { useDeleteUser, useExportUser, useRestoreUser, useUser, useUserRow } from "./queries";
import { RoleBadge } from "./RoleBadge";
import { RoleControl } from "./RoleControl";
import { UserAudit } from "./UserAudit";
import { UserMfa } from "./UserMfa";
import { UserSessions } from "./UserSessions";

function Section({ title, children }: { title: string; children: ReactNode }) {
  return (
    <Paper withBorder p="md" component="section" aria-label={title}>
      <Title order={3} size="h4" mb="sm">
        {title}
      </Title>
      {children}
    </Paper>
  );
}

function Details({ user, row }: { user: User | AdminUser; row: AdminUser | null | undefined }) {
  const lastLogin = row === undefined ? "…" : row?.last_login_at ? formatDateTime(row.last_login_at) : "Never";
  return (
    <SimpleGrid cols={{ base: 1, xs: 2, md: 3 }} spacing="md">
      <Field label="Email">{user.email}</Field>
      <Field label="Role">
        <RoleBadge role={user.role} />
      </Field>
      <Field label="Last login">{lastLogin}</Field>
      <Field label="Created">{formatDateTime(user.created_at)}</Field>
      <Field label="Updated">{formatDateTime(user.updated_at)}</Field>
      {row?.deleted_at && <Field label="Deleted">{formatDateTime(row.deleted_at)}</Field>}
      <Field label="ID">
        <Text span ff="monospace" fz="sm">
          {user.id}
        </Text>
      </Field>
    </SimpleGrid>
  );
}

function BackLink() {
  return (
    <Anchor component={Link} to={usersListPath()} fz="sm">
      ← All users
    </Anchor>
  );
}

function useExport(id: string) {
  return useExportUser(id, { onSuccess: (data) => downloadJson(data, `gatehouse-export-${id}.json`) });
}

export function UserPage() {
  const { id = "" } = useParams();
  const location = useLocation();
  const user = useUser(id);
  const deletedUser = (location.state as { deletedUser?: AdminUser } | null)?.deletedUser;

  if (user.isPending) return <PageLoader />;
  if (user.isError) {
    const missing = user.error instanceof ApiError && (user.error.status === 404 || user.error.status === 400);
    if (missing && deletedUser?.id === id) return <DeletedUserView user={deletedUser} />;
    return (
      <Stack>
        <BackLink />
        <Title order={2}>User</Title>
        {missing ? <Text>This user does not exist, or has been deleted.</Text> : <ErrorText error={user.error} />}
      </Stack>
    );
  }
  return <LiveUserView current={user.data} />;
}

function LiveUserView({ current }: { current: Versioned<User> }) {
  const user = current.data;
  usePageTitle(user.name);
  const { me, canWrite, canReadAudit } = usePermissions();
  const isSelf = me?.id === user.id;
  const row = useUserRow(user);
  const [editing, setEditing] = useState(false);
  const navigate = useNavigate();
  const exporting = useExport(user.id);

  const remove = useDeleteUser(current, {
    onSuccess: () => {
      notifySuccess({
        message: `${user.name} was deleted. An admin can restore the account for a while: tick "Show deleted users" in the list.`,
      });
      navigate(usersListPath());
    },
  });

  const askDelete = () =>
    confirmAction({
      title: "Delete user",
      message: isSelf
        ? "This is your own account. It is logged out everywhere and can no longer log in; another admin can restore it for a while."
        : `Delete ${user.name} (${user.email})? They are logged out everywhere and can no longer log in. Their email becomes free; an admin can restore the account for a while.`,
      confirmLabel: "Delete user",
      onConfirm: () => remove.mutate(),
    });

  return (
    <Stack>
      <BackLink />
      <Group justify="space-between" align="center">
        <Group gap="sm">
          <Title order={2} style={{ overflowWrap: "anywhere" }}>
            {user.name}
          </Title>
          <RoleBadge role={user.role} size="lg" />
          {isSelf && (
            <FitBadge variant="outline" color="gray">
              you
            </FitBadge>
          )}
        </Group>
        {canWrite && (
          <Button variant="default" onClick={() => setEditing(true)}>
            Edit name or email
          </Button>
        )}
      </Group>

      <Paper withBorder p="md">
        <Details user={user} row={row.isError ? null : row.data} />
      </Paper>

      {canWrite && (
        <Section title="Role">
          <RoleControl current={current} isSelf={isSelf} />
        </Section>
      )}

      <Section title="Two-factor authentication">
        <UserMfa user={user} canWrite={canWrite} isSelf={isSelf} />
      </Section>

      <Section title="Sessions">
        <UserSessions user={user} canWrite={canWrite} isSelf={isSelf} />
      </Section>

      <Section title="Audit events">
        <UserAudit userId={user.id} allowed={canReadAudit} />
      </Section>

      {canWrite && (
        <Section title="Data and deletion">
          <Stack gap="sm">
            <ErrorText error={exporting.error ?? remove.error} />
            <Group>
              <Button variant="default" onClick={() => exporting.mutate()} loading={exporting.isPending}>
                Export data
              </Button>
              <Button color="red" variant="light" onClick={askDelete} loading={remove.isPending}>
                Delete user
              </Button>
            </Group>
            <Text fz="sm" c="dimmed">
              The export is everything Gatehouse holds about this user, as a JSON file. Deleting is a soft delete: the
              account can be restored until the grace period ends.
            </Text>
          </Stack>
        </Section>
      )}

      {canWrite && <EditUserModal current={current} opened={editing} onClose={() => setEditing(false)} />}
    </Stack>
  );
}

function DeletedUserView({ user }: { user: AdminUser }) {
  usePageTitle(user.name);
  const { canWrite, canReadAudit } = usePermissions();
  const navigate = useNavigate();
  const exporting = useExport(user.id);
  const restore = useRestoreUser(user.id, {
    onSuccess: (restored) => {
      notifySuccess({ message: `${restored.name} is restored and can log in again.` });
      navigate(`/users/${user.id}`, { replace: true, state: null });
    },
  });

  return (
    <Stack>
      <BackLink />
      <Group gap="sm">
        <Title order={2}>{user.name}</Title>
        <FitBadge color="red" size="lg">
          deleted
        </FitBadge>
      </Group>
      <Alert color="orange" variant="light" title="This account is deleted">
        It cannot log in and its sessions have ended.{" "}
        {canWrite
          ? "You can restore it until the grace period ends; after that its personal data is erased for good."
          : ""}
      </Alert>
      <Paper withBorder p="md">
        <Details user={user} row={user} />
      </Paper>
      {canWrite && (
        <Stack gap="sm">
          <ErrorText error={restore.error ?? exporting.error} />
          <Group>
            <Button onClick={() => restore.mutate()} loading={restore.isPending}>
              Restore user
            </Button>
            <Button variant="default" onClick={() => exporting.mutate()} loading={exporting.isPending}>
              Export data
            </Button>
          </Group>
        </Stack>
      )}
      <Section title="Audit events">
        <UserAudit userId={user.id} allowed={canReadAudit} />
      </Section>
    </Stack>
  );
}
