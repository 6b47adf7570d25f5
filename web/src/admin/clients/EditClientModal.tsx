import { Alert, Button, Group, Modal, Stack } from "@mantine/core";
import { useForm } from "@mantine/form";
import { useEffect, useState } from "react";
import { ApiError } from "../../shared/errors";
import { notifySuccess } from "../../shared/notify";
import { ErrorText } from "../../shared/ui";
import type { Versioned } from "../../shared/versioned";
import { ClientFields } from "./ClientFields";
import { type ClientValues, clientFieldErrors, patchBody, validateClient, valuesOf } from "./options";
import { type OAuthClient, useReloadClient, useUpdateClient } from "./queries";

type Props = { current: Versioned<OAuthClient>; opened: boolean; onClose: () => void };

export function EditClientModal({ current, opened, onClose }: Props) {
  const client = current.data;
  const reloadClient = useReloadClient(client.id);
  const [others, setOthers] = useState<string[]>([]);
  const form = useForm<ClientValues>({ initialValues: valuesOf(client), validate: validateClient });

  // biome-ignore lint/correctness/useExhaustiveDependencies: start from the client as shown each time the dialog opens, not at every change
  useEffect(() => {
    if (opened) {
      form.setValues(valuesOf(client));
      form.resetDirty(valuesOf(client));
      form.clearErrors();
      setOthers([]);
    }
  }, [opened]);

  const save = useUpdateClient(current, {
    onSuccess: () => {
      notifySuccess({ message: "Changes saved." });
      onClose();
    },
    onError: (error) => {
      const { fields, rest } = clientFieldErrors(error);
      form.setErrors(fields);
      setOthers(rest);
    },
  });

  const conflict = save.error instanceof ApiError && save.error.code === "VERSION_CONFLICT";
  const onField = Object.values(form.errors).some(Boolean);
  const general = save.error && !onField && others.length === 0 ? save.error : null;

  const reload = async () => {
    await reloadClient();
    save.reset();
    onClose();
  };

  return (
    <Modal opened={opened} onClose={onClose} title="Edit client" size="lg">
      <form
        noValidate
        aria-label="Edit client"
        onSubmit={form.onSubmit((values) => {
          setOthers([]);
          const changes = patchBody(client, values);
          if (Object.keys(changes).length === 0) onClose();
          else save.mutate(changes);
        })}
      >
        <Stack>
          <ErrorText error={general} />
          {others.length > 0 && (
            <Alert color="red" variant="light" role="alert">
              {others.join(" ")}
            </Alert>
          )}
          {conflict && (
            <Button variant="light" onClick={reload}>
              Load the latest version
            </Button>
          )}
          <ClientFields form={form} editing />
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={save.isPending}>
              Save changes
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
