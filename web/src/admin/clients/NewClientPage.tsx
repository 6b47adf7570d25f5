import { Alert, Anchor, Button, Group, Paper, Stack, Text, Title } from "@mantine/core";
import { useForm } from "@mantine/form";
import { useState } from "react";
import { Link } from "react-router";
import { ErrorText } from "../../shared/ui";
import type { Versioned } from "../../shared/versioned";
import { usePermissions } from "../permissions";
import { usePageTitle } from "../usePageTitle";
import { ClientFields } from "./ClientFields";
import { CopyValue, SecretWarning } from "./Credentials";
import { type ClientValues, clientFieldErrors, createBody, EMPTY_CLIENT, validateClient } from "./options";
import { type ClientWithSecret, useCreateClient } from "./queries";

function BackLink() {
  return (
    <Anchor component={Link} to="/clients" fz="sm">
      ← All clients
    </Anchor>
  );
}

/** /clients/new: register a client; the answer (its secret, once) replaces the form. */
export function NewClientPage() {
  usePageTitle("Register client");
  const { canWrite } = usePermissions();
  const [created, setCreated] = useState<ClientWithSecret | null>(null);

  if (!canWrite) {
    return (
      <Stack>
        <BackLink />
        <Title order={2}>Register client</Title>
        <Text>Only an admin can register clients.</Text>
      </Stack>
    );
  }
  if (created) return <Registered client={created} />;
  return <RegisterForm onCreated={(result) => setCreated(result.data)} />;
}

function RegisterForm({ onCreated }: { onCreated: (created: Versioned<ClientWithSecret>) => void }) {
  const form = useForm<ClientValues>({ initialValues: EMPTY_CLIENT, validate: validateClient });
  const [others, setOthers] = useState<string[]>([]);
  const create = useCreateClient({
    onSuccess: onCreated,
    onError: (error) => {
      const { fields, rest } = clientFieldErrors(error);
      form.setErrors(fields);
      setOthers(rest);
    },
  });
  const onField = Object.values(form.errors).some(Boolean);
  const general = create.error && !onField && others.length === 0 ? create.error : null;

  return (
    <Stack>
      <BackLink />
      <Title order={2}>Register client</Title>
      <Paper withBorder p="md">
        <form
          noValidate
          aria-label="Register client"
          onSubmit={form.onSubmit((values) => {
            setOthers([]);
            create.mutate(createBody(values));
          })}
        >
          <Stack>
            <ErrorText error={general} />
            {others.length > 0 && (
              <Alert color="red" variant="light" role="alert">
                {others.join(" ")}
              </Alert>
            )}
            <ClientFields form={form} />
            <Group justify="flex-end">
              <Button variant="default" component={Link} to="/clients">
                Cancel
              </Button>
              <Button type="submit" loading={create.isPending}>
                Register client
              </Button>
            </Group>
          </Stack>
        </form>
      </Paper>
    </Stack>
  );
}

function Registered({ client }: { client: ClientWithSecret }) {
  return (
    <Stack>
      <BackLink />
      <Title order={2}>Client registered</Title>
      <Paper withBorder p="md" component="section" aria-label="Credentials">
        <Stack>
          <Text>
            <b>{client.name}</b> is registered. Configure the application with these values.
          </Text>
          <CopyValue label="client_id" value={client.client_id} />
          {client.client_secret ? (
            <>
              <SecretWarning />
              <CopyValue label="client_secret" value={client.client_secret} />
            </>
          ) : (
            <Text fz="sm" c="dimmed">
              A public client has no secret: it proves each login with PKCE.
            </Text>
          )}
          <Group justify="flex-end">
            <Button component={Link} to={`/clients/${client.id}`}>
              {client.client_secret ? "I have stored it: open the client" : "Open the client"}
            </Button>
          </Group>
        </Stack>
      </Paper>
    </Stack>
  );
}
