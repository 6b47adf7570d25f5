import { Button, Group, Select, Stack, Text } from "@mantine/core";
import { useEffect, useState } from "react";
import type { Role, User } from "../../shared/api";
import { notifySuccess } from "../../shared/notify";
import { confirmAction, ErrorText } from "../../shared/ui";
import type { Versioned } from "../../shared/versioned";
import { useUpdateUser } from "./queries";
import { ROLES } from "./usersState";

const EFFECT: Record<Role, string> = {
  admin: "They will be able to change every user, webhook and role.",
  readonly: "They will read every user, session and webhook, and change nothing.",
  user: "They will lose access to the admin portal.",
};

export function RoleControl({ current, isSelf }: { current: Versioned<User>; isSelf: boolean }) {
  const user = current.data;
  const [role, setRole] = useState<Role>(user.role);
  useEffect(() => setRole(user.role), [user.role]);

  const change = useUpdateUser(current, {
    onSuccess: (result) => notifySuccess({ message: `${result.data.name} is now ${result.data.role}.` }),
  });

  if (isSelf) {
    // The API refuses it (403) before it would even look for another admin.
    return (
      <Text c="dimmed" fz="sm">
        You cannot change your own role; another admin can.
      </Text>
    );
  }

  const ask = () =>
    confirmAction({
      title: "Change role",
      message: `Make ${user.name} ${role}? ${EFFECT[role]} Their access tokens stop working at once; their next refresh carries the new role.`,
      confirmLabel: "Change role",
      danger: role !== "admin" && user.role === "admin",
      onConfirm: () => change.mutate({ role }),
    });

  return (
    <Stack gap="xs">
      <Group align="flex-end" gap="sm">
        <Select
          label="New role"
          data={ROLES.map((value) => ({ value, label: value }))}
          value={role}
          allowDeselect={false}
          onChange={(value) => {
            if (value) setRole(value as Role);
            change.reset();
          }}
          w={160}
        />
        <Button onClick={ask} disabled={role === user.role} loading={change.isPending}>
          Change role
        </Button>
      </Group>
      <ErrorText error={change.error} />
    </Stack>
  );
}
