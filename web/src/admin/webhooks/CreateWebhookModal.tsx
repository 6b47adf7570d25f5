import { Button, Group, Modal, Stack, TextInput } from "@mantine/core";
import { useForm } from "@mantine/form";
import type { Schemas } from "../../shared/api";
import { fieldErrors } from "../../shared/errors";
import { ErrorText } from "../../shared/ui";
import { EventTypesPicker } from "./EventTypesPicker";
import { toEventTypes } from "./eventTypes";
import { useCreateWebhook } from "./queries";

type Values = { url: string; description: string; eventTypes: string[] };

export function validateWebhook(values: Values): Partial<Record<keyof Values, string>> {
  const errors: Partial<Record<keyof Values, string>> = {};
  if (!/^https?:\/\/\S+$/i.test(values.url.trim())) errors.url = "Enter an http:// or https:// address";
  if (values.eventTypes.length === 0) errors.eventTypes = "Choose at least one event type";
  if (values.description.length > 255) errors.description = "Use at most 255 characters";
  return errors;
}

type Props = {
  opened: boolean;
  onClose: () => void;
  onCreated: (webhook: Schemas["WebhookWithSecret"]) => void;
};

export function CreateWebhookModal({ opened, onClose, onCreated }: Props) {
  const form = useForm<Values>({
    initialValues: { url: "", description: "", eventTypes: [] },
    validate: validateWebhook,
  });
  const create = useCreateWebhook({
    onSuccess: (webhook) => {
      close();
      onCreated(webhook);
    },
    onError: (error) => {
      // `event_types.2` names one entry; the picker shows it on the whole field.
      const { event_types, ...rest } = fieldErrors(error);
      const typeErrors = Object.entries(fieldErrors(error)).filter(([key]) => /^\d+$/.test(key));
      form.setErrors({ ...rest, eventTypes: event_types ?? typeErrors[0]?.[1] });
    },
  });
  const close = () => {
    form.reset();
    create.reset();
    onClose();
  };
  const submit = form.onSubmit((values) => {
    // The form's validation has refused an empty selection already.
    const eventTypes = toEventTypes(values.eventTypes);
    if (!eventTypes) return;
    create.mutate({ url: values.url.trim(), description: values.description.trim(), event_types: eventTypes });
  });
  const general = create.error && Object.values(form.errors).every((e) => !e) ? create.error : null;

  return (
    <Modal opened={opened} onClose={close} title="Create webhook">
      <form onSubmit={submit} noValidate aria-label="Create webhook">
        <Stack>
          <ErrorText error={general} />
          <TextInput
            label="URL"
            type="url"
            required
            placeholder="https://hooks.example.com/gatehouse"
            description="Where Gatehouse POSTs each event; it must be a public address"
            data-autofocus
            {...form.getInputProps("url")}
          />
          <TextInput label="Description" placeholder="CRM sync" {...form.getInputProps("description")} />
          <EventTypesPicker
            value={form.values.eventTypes}
            onChange={(next) => form.setFieldValue("eventTypes", next)}
            error={form.errors.eventTypes}
          />
          <Group justify="flex-end">
            <Button variant="default" onClick={close}>
              Cancel
            </Button>
            <Button type="submit" loading={create.isPending}>
              Create webhook
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
