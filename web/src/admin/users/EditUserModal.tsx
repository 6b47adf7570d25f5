import { Button, Group, Modal, Stack, TextInput } from "@mantine/core";
import { useForm } from "@mantine/form";
import { useEffect } from "react";
import type { User } from "../../shared/api";
import { ApiError, fieldErrors } from "../../shared/errors";
import { notifySuccess } from "../../shared/notify";
import { ErrorText } from "../../shared/ui";
import type { Versioned } from "../../shared/versioned";
import { useReloadUser, useUpdateUser } from "./queries";

type Values = { name: string; email: string };

/** Only what changed, so an unchanged email is not re-sent (and not re-validated). */
export function changedFields(user: Pick<User, "name" | "email">, values: Values): Partial<Values> {
  const changes: Partial<Values> = {};
  if (values.name.trim() !== user.name) changes.name = values.name.trim();
  if (values.email.trim().toLowerCase() !== user.email) changes.email = values.email.trim();
  return changes;
}

type Props = { current: Versioned<User>; opened: boolean; onClose: () => void };

export function EditUserModal({ current, opened, onClose }: Props) {
  const user = current.data;
  const reloadUser = useReloadUser(user.id);
  const form = useForm<Values>({
    initialValues: { name: user.name, email: user.email },
    validate: {
      name: (value) => (value.trim() ? null : "Enter a name"),
      email: (value) => (/^[^\s@]+@[^\s@]+$/.test(value.trim()) ? null : "Enter an email address"),
    },
  });

  // biome-ignore lint/correctness/useExhaustiveDependencies: start from the user as shown each time the dialog opens, not at every change
  useEffect(() => {
    if (opened) {
      form.setValues({ name: user.name, email: user.email });
      form.resetDirty({ name: user.name, email: user.email });
    }
  }, [opened]);

  const save = useUpdateUser(current, {
    onSuccess: () => {
      notifySuccess({ message: "Changes saved." });
      onClose();
    },
    onError: (error) => form.setErrors(fieldErrors(error)),
  });

  const conflict = save.error instanceof ApiError && save.error.code === "VERSION_CONFLICT";
  const general = save.error && Object.keys(form.errors).length === 0 ? save.error : null;

  const reload = async () => {
    await reloadUser();
    save.reset();
    onClose();
  };

  return (
    <Modal opened={opened} onClose={onClose} title="Edit user">
      <form
        noValidate
        aria-label="Edit user"
        onSubmit={form.onSubmit((values) => {
          const changes = changedFields(user, values);
          if (Object.keys(changes).length === 0) onClose();
          else save.mutate(changes);
        })}
      >
        <Stack>
          <ErrorText error={general} />
          {conflict && (
            <Button variant="light" onClick={reload}>
              Load the latest version
            </Button>
          )}
          <TextInput label="Name" required {...form.getInputProps("name")} />
          <TextInput
            label="Email"
            type="email"
            required
            description="A new address is unverified until its owner confirms it"
            {...form.getInputProps("email")}
          />
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={save.isPending}>
              Save
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
