import { Alert, Avatar, Badge, Button, Group, Paper, SimpleGrid, Stack, Text, TextInput, Title } from "@mantine/core";
import { useForm } from "@mantine/form";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import type { User } from "../../shared/api";
import { ApiError, describeError } from "../../shared/errors";
import { Field } from "../../shared/Field";
import { formatDateTime } from "../../shared/format";
import { storeMe, updateMe, useReloadMe, useVersionedMe, type VersionedUser } from "../../shared/me";
import { notifySuccess } from "../../shared/notify";
import { PasswordField } from "../../shared/PasswordField";
import { ErrorText, PageLoader } from "../../shared/ui";
import { showFieldErrors } from "../forms";
import { PageHeader } from "../PageHeader";
import {
  emailChanged,
  emailError,
  initials,
  nameError,
  type ProfileValues,
  profileChanges,
  roleLabel,
} from "../validation";

const PASSWORD_CODES = new Set(["REAUTHENTICATION_REQUIRED", "INVALID_CURRENT_PASSWORD"]);

export function ProfilePage() {
  const me = useVersionedMe();
  return (
    <>
      <PageHeader title="Your profile" description="Your name and the email address you log in with." />
      {me.data ? (
        <Stack gap="lg">
          <ProfileSummary user={me.data.user} />
          {me.data.user.role === "readonly" ? (
            <Alert color="gray" title="Read-only account">
              A read-only account cannot change its own name or email. Ask an administrator.
            </Alert>
          ) : (
            <ProfileForm key={me.data.etag ?? me.data.user.updated_at} current={me.data} />
          )}
        </Stack>
      ) : me.isError ? (
        <ErrorText error={me.error} />
      ) : (
        <PageLoader />
      )}
    </>
  );
}

function ProfileSummary({ user }: { user: User }) {
  return (
    <Paper withBorder radius="md" p="lg">
      <Group gap="lg" wrap="nowrap" align="center">
        <Avatar color="indigo" radius="xl" size={64} aria-hidden>
          {initials(user.name)}
        </Avatar>
        <Stack gap={2} miw={0}>
          <Title order={2} size="h3" style={{ overflowWrap: "anywhere" }}>
            {user.name}
          </Title>
          <Text c="dimmed" style={{ overflowWrap: "anywhere" }}>
            {user.email}
          </Text>
        </Stack>
      </Group>
      <SimpleGrid cols={{ base: 1, xs: 2 }} mt="lg" spacing="sm">
        <Field label="Role">
          <Badge variant="light">{roleLabel(user.role)}</Badge>
        </Field>
        <Field label="Member since">{formatDateTime(user.created_at)}</Field>
      </SimpleGrid>
    </Paper>
  );
}

/** Edits name and email; a new email needs the current password (the API asks for it). */
export function ProfileForm({ current }: { current: VersionedUser }) {
  const queryClient = useQueryClient();
  const reloadMe = useReloadMe();
  const { user, etag } = current;
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const form = useForm<ProfileValues>({
    initialValues: { name: user.name, email: user.email, current_password: "" },
    validate: {
      name: nameError,
      email: emailError,
      current_password: (value, values) =>
        emailChanged(user, values) && !value ? "Enter your current password to change your email" : null,
    },
  });
  const changingEmail = emailChanged(user, form.values);
  const changes = profileChanges(user, form.values);

  const submit = form.onSubmit(async (values) => {
    const body = profileChanges(user, values);
    if (!body) return;
    setBusy(true);
    setError(null);
    try {
      const saved = await updateMe(body, etag);
      notifySuccess({ title: "Profile saved", message: "Your changes are saved." });
      // The new version remounts this form (its key) with the saved values.
      storeMe(queryClient, saved);
    } catch (caught) {
      if (caught instanceof ApiError && PASSWORD_CODES.has(caught.code)) {
        form.setFieldError("current_password", describeError(caught));
      } else if (!showFieldErrors(form, caught, ["name", "email", "current_password"])) {
        setError(caught);
      }
    } finally {
      setBusy(false);
    }
  });

  return (
    <Paper withBorder radius="md" p="lg" component="section" aria-labelledby="edit-profile">
      <form onSubmit={submit} noValidate aria-label="Edit your profile">
        <Stack>
          <Title order={2} size="h4" id="edit-profile">
            Edit your details
          </Title>
          <ErrorText error={error} />
          {error instanceof ApiError && error.code === "VERSION_CONFLICT" && (
            <Button variant="light" onClick={() => void reloadMe()}>
              Load the latest version
            </Button>
          )}
          <TextInput label="Name" autoComplete="name" required {...form.getInputProps("name")} />
          <TextInput label="Email" type="email" autoComplete="email" required {...form.getInputProps("email")} />
          {changingEmail && (
            <PasswordField
              label="Current password"
              description="Needed to change the email you log in with."
              autoComplete="current-password"
              required
              {...form.getInputProps("current_password")}
            />
          )}
          <Group justify="flex-end">
            <Button variant="default" onClick={() => form.reset()} disabled={!changes || busy}>
              Undo changes
            </Button>
            <Button type="submit" loading={busy} disabled={!changes}>
              Save changes
            </Button>
          </Group>
        </Stack>
      </form>
    </Paper>
  );
}
